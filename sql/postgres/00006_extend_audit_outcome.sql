-- +goose Up
-- A CHECK constraint cannot be altered in place: drop it and add the wider
-- one under the same name.
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS chk_audit_outcome;
ALTER TABLE audit_events ADD CONSTRAINT chk_audit_outcome
    CHECK (outcome IN ('success', 'failure', 'denied', 'error'));

-- +goose Down
-- The old CHECK allows only 'success' and 'failure'. Rows recorded as
-- 'denied' or 'error' are kept and mapped to 'failure' (the nearest old
-- meaning: the request did not succeed) rather than deleted, so the audit
-- trail survives; the finer distinction is lost.
UPDATE audit_events SET outcome = 'failure' WHERE outcome IN ('denied', 'error');
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS chk_audit_outcome;
ALTER TABLE audit_events ADD CONSTRAINT chk_audit_outcome
    CHECK (outcome IN ('success', 'failure'));
