/** "A test that leaves a timer open fails": compare ref'd Timeouts against a baseline. */
export function refedTimeouts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
}
