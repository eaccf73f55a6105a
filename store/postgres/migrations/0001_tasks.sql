-- The tasks, one row each, and the proofs of their handlers.
CREATE TABLE {{schema}}.tasks (
    id                      uuid PRIMARY KEY,
    seq                     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    version                 bigint NOT NULL,
    key                     bytea NOT NULL UNIQUE,
    routing_key             text NOT NULL,
    backend                 text NOT NULL,
    program                 bytea,
    weight                  bigint NOT NULL,
    priority                integer NOT NULL,
    depends_on              uuid[],
    timeout_ns              bigint NOT NULL,
    no_timeout              boolean NOT NULL,
    state                   smallint NOT NULL,
    attempts                integer NOT NULL,
    restarts                integer NOT NULL,
    interruptions           integer NOT NULL,
    runs                    integer NOT NULL,
    checkpoint              bytea,
    last_error              text NOT NULL,
    failed_dependency       uuid,
    failed_dependency_state smallint NOT NULL,
    next_attempt_at         timestamptz,
    waiting_since           timestamptz,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);

-- Unfinished reads the tasks not in a final state (Completed 4, Failed 5, Cancelled 6) in
-- submission order; Prune looks for the unfinished tasks that depend on a candidate.
CREATE INDEX tasks_unfinished ON {{schema}}.tasks (seq) WHERE state NOT IN (4, 5, 6);
CREATE INDEX tasks_unfinished_depends_on ON {{schema}}.tasks USING gin (depends_on) WHERE state NOT IN (4, 5, 6);
CREATE INDEX tasks_finished_updated ON {{schema}}.tasks (updated_at) WHERE state IN (4, 5, 6);

CREATE TABLE {{schema}}.proofs (
    task_id       uuid PRIMARY KEY,
    backend       text NOT NULL,
    receipt       bytea,
    public_values bytea,
    stored_at     timestamptz NOT NULL DEFAULT now()
);
