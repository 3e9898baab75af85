-- chatplane schema, version 5, PostgreSQL dialect: the diagnosis of a stop.
--
-- runs.diagnosis holds {"playbook", "summary", "evidence"} for every stop
-- but completed and user_stopped (docs/runs.md, Diagnosis); NULL for
-- those, for running runs, and for runs that stopped before version 5.

ALTER TABLE runs ADD COLUMN diagnosis json;
