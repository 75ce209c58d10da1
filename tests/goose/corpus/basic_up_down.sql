-- +goose Up
CREATE TABLE projects (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE INDEX idx_projects_name ON projects(name);

-- +goose Down
DROP INDEX idx_projects_name;
DROP TABLE projects;
