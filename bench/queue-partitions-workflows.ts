/** The one-activity workflow of bench/queue-partitions.ts. Bundled separately from `workflows/`. */
import { proxyActivities } from '@temporalio/workflow';

const { hold } = proxyActivities<{ hold(ms: number): Promise<void> }>({
  startToCloseTimeout: '1m',
  scheduleToStartTimeout: '5m',
});

export async function holdWorkflow(ms: number): Promise<void> {
  await hold(ms);
}
