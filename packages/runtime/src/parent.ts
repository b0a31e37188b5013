/**
 * A process started by a launcher (`npm start`'s scripts/start.mjs, scripts/run-app.mjs) ends
 * with it. The launcher passes its pid (LONGHAUL_PARENT_PID); when this process's parent is no
 * longer that pid, the launcher is gone — killed by SIGKILL, crashed, or its terminal closed —
 * and the kernel has handed us to another parent. Linux's parent-death signal is not reachable
 * from Node, so the parent pid is polled: once a second, on an unref'd timer, costing a getppid.
 *
 * Comparing against the launcher's own pid rather than the parent seen at start-up also catches
 * a launcher that died while this process was still starting.
 *
 * Without a parent pid nothing is watched: a container's PID 1 or a process under a supervisor
 * that does not set the variable is not affected.
 */
import type { Logger } from './logger.ts';

/** Watch for the launcher `parentPid` to go away and call `onGone` once. Returns a stop function. */
export function exitWithParent(logger: Logger, parentPid: number | undefined, onGone: () => void, intervalMs = 1_000): () => void {
  if (!parentPid || parentPid <= 0) return () => {};
  let timer: NodeJS.Timeout | undefined;
  const check = (): boolean => {
    if (process.ppid === parentPid) return false;
    clearInterval(timer);
    logger.warn({ code: 'parent_gone', parent_pid: parentPid, ppid: process.ppid }, 'the process that started this one is gone: shutting down');
    onGone();
    return true;
  };
  if (check()) return () => {};
  timer = setInterval(check, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
