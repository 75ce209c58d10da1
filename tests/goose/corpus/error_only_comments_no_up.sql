-- just a comment

-- another
