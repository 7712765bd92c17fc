-- 0540_run_guard_without_row_lock: the run state guard of 0001 as an AFTER
-- trigger.
--
-- A BEFORE ROW UPDATE trigger makes PostgreSQL lock each row before it
-- calls the trigger, and that lock is a WAL record and a page write of its
-- own. Every run is updated at least twice (claimed, resolved), so the
-- guard cost more than three WAL records per task on a drained graph
-- (pg_walinspect: 3.2 row locks on runs per task, out of about 37 records).
-- An AFTER ROW trigger sees the same OLD and NEW rows without locking
-- anything, and its error still aborts the whole statement, so an illegal
-- transition is refused exactly as before and nothing of it is written.
DROP TRIGGER runs_guard_transition ON runs;
CREATE TRIGGER runs_guard_transition
  AFTER UPDATE ON runs FOR EACH ROW
  WHEN (OLD.state IN ('completed', 'failed', 'exception') OR
        OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION runs_guard_transition();
