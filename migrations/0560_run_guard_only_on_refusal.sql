-- 0560_run_guard_only_on_refusal: the run state guard's condition moves
-- whole into the trigger's WHEN clause.
--
-- 0540's WHEN let every state change through to runs_guard_transition(),
-- so each claim and each resolution called PL/pgSQL once per run just to
-- find the transition legal: two calls per task, and the claim and report
-- statements are the queue's hot paths. PostgreSQL evaluates a WHEN clause
-- inline and queues no trigger event when it is false, so the function now
-- runs only for an update it is going to refuse: a change to a resolved
-- run, or a state change outside pending -> running | exception and
-- running -> completed | failed | exception. The function keeps its own
-- test, so the refusal and its message are exactly those of 0001.
DROP TRIGGER runs_guard_transition ON runs;
CREATE TRIGGER runs_guard_transition
  AFTER UPDATE ON runs FOR EACH ROW
  WHEN (OLD.state IN ('completed', 'failed', 'exception') OR
        (OLD.state IS DISTINCT FROM NEW.state AND NOT (
           (OLD.state = 'pending' AND NEW.state IN ('running', 'exception')) OR
           (OLD.state = 'running' AND
            NEW.state IN ('completed', 'failed', 'exception')))))
  EXECUTE FUNCTION runs_guard_transition();
