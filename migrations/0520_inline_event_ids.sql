-- 0520_inline_event_ids: next_event_id() as an SQL expression.
--
-- Every event row takes its id from next_event_id(), which must give the
-- inserting transaction its xid (and so its xid lock, which WatchEvents
-- readers wait on) before it draws the id from event_ids. The PL/pgSQL
-- version of 0300 did that with a PERFORM, one SPI query per event row:
-- three or four per task, 100,000 for a 100,000-task graph. As a single
-- SELECT of a CASE the planner inlines the function into the INSERT; CASE
-- evaluates its condition before its result, so the xid is still assigned
-- before nextval runs.
CREATE OR REPLACE FUNCTION next_event_id() RETURNS bigint
  LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN pg_current_xact_id() IS NOT NULL
              THEN nextval('event_ids') END
$$;
