/** The chaos scenarios, in the order the issue lists them. */
import type { Scenario } from '../scenario.ts';
import { workerKills } from './1-worker-kills.ts';
import { redisOutages } from './2-redis-outages.ts';
import { postgresRestart } from './3-postgres-restart.ts';
import { providerTrouble } from './4-provider-trouble.ts';
import { webhookChaos } from './5-webhook-chaos.ts';
import { receiverDown } from './6-receiver-down.ts';
import { gracefulShutdown } from './7-graceful-shutdown.ts';
import { toolLoopKills } from './8-tool-loop-kills.ts';
import { pipelineKills } from './9-pipeline-kills.ts';
import { batchKills } from './10-batch-kills.ts';

export { workerKills, redisOutages, postgresRestart, providerTrouble, webhookChaos, receiverDown, gracefulShutdown, toolLoopKills, pipelineKills, batchKills };

export const SCENARIOS: readonly Scenario[] = [
  workerKills,
  redisOutages,
  postgresRestart,
  providerTrouble,
  webhookChaos,
  receiverDown,
  gracefulShutdown,
  toolLoopKills,
  pipelineKills,
  batchKills,
];
