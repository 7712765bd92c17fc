-- 0300_task_graphs: staged task-graph submission, task-group resolution
-- checks, and event ids that WatchEvents can follow without gaps.
--
-- Numbered 0300 so it never collides with the core schema (0001-0099),
-- artifacts (0100), auth (0200) or the worker manager (0400).

-- Event ids. An IDENTITY default draws the id before the inserting
-- transaction necessarily has a transaction id, so a reader could not tell
-- whether an id it does not see yet belongs to a transaction still running.
-- next_event_id() makes sure the transaction has an xid *before* it draws
-- the id. A reader then knows: every id drawn before it read the sequence
-- belongs to a transaction that was already running (or done) when it took
-- its next snapshot, and once that snapshot's xmax is below every running
-- xid, all those ids are either visible or will never appear (rolled
-- back). See PgStore::ReadEvents and docs/architecture.md ("Event log").
ALTER TABLE events ALTER COLUMN event_id DROP IDENTITY IF EXISTS;
CREATE SEQUENCE event_ids AS bigint;
SELECT setval('event_ids', coalesce((SELECT max(event_id) FROM events), 0) + 1,
              false);
CREATE FUNCTION next_event_id() RETURNS bigint
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_current_xact_id();
  RETURN nextval('event_ids');
END
$$;
ALTER TABLE events ALTER COLUMN event_id SET DEFAULT next_event_id();
ALTER SEQUENCE event_ids OWNED BY events.event_id;
-- Retention deletes the oldest events first (by id, through the key).

-- "Is anything in this group still unresolved?" probes only unresolved
-- tasks.
CREATE INDEX tasks_group_unresolved ON tasks (task_group_id)
  WHERE NOT resolved;
-- ListDependentTasks pages through a task's dependents in id order using
-- task_dependencies_required (required, dependent) from 0001.

-- Written by every transaction that resolves a task for good; consumed by
-- the task-group resolver, which announces task-group-resolved for groups
-- left with no unresolved task. An append-only queue instead of a counter
-- on task_groups, so resolutions in one group never wait on one hot row.
CREATE TABLE task_group_checks (
  check_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_group_id text NOT NULL
);
CREATE INDEX task_group_checks_group ON task_group_checks (task_group_id);
ALTER TABLE task_group_checks SET (autovacuum_vacuum_scale_factor = 0.0,
                                   autovacuum_vacuum_threshold = 1000);

-- Staged task graphs (CreateTaskGraph with commit=false). Unlogged: staging
-- is transient, a crash merely makes the client resubmit the graph, and
-- skipping the WAL halves the cost of a staged batch. Rows move into tasks
-- when the graph is committed; stale stages are discarded by the
-- retention resolver.
CREATE UNLOGGED TABLE task_graph_stages (
  graph_id text PRIMARY KEY,
  created timestamptz NOT NULL
);
CREATE INDEX task_graph_stages_created ON task_graph_stages (created);
CREATE UNLOGGED TABLE task_graph_staged_tasks (
  graph_id text NOT NULL
    REFERENCES task_graph_stages ON DELETE CASCADE,
  task_id text NOT NULL,
  task_queue_id text NOT NULL,
  scheduler_id text NOT NULL,
  task_group_id text NOT NULL,
  dependencies text[] NOT NULL,
  requires text NOT NULL,
  routes text[] NOT NULL,
  priority int NOT NULL,
  retries int NOT NULL,
  created timestamptz NOT NULL,
  deadline timestamptz NOT NULL,
  expires timestamptz NOT NULL,
  scopes text[] NOT NULL,
  payload jsonb NOT NULL,
  metadata_name text NOT NULL,
  metadata_description text NOT NULL,
  metadata_owner text NOT NULL,
  metadata_source text NOT NULL,
  tags jsonb NOT NULL,
  extra jsonb NOT NULL,
  PRIMARY KEY (graph_id, task_id)
);
