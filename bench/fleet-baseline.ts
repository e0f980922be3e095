/**
 * The fleet benchmark's bare-Temporal baseline: the least any Temporal-driven refresh does, a
 * workflow that runs one activity which pages through DescribeInstances for the fleet's tag and
 * returns the instance ids. No records, no plan, no templates. Bundled apart from `workflows/`.
 */
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { proxyActivities } from '@temporalio/workflow';

export interface FleetBaselineActivities {
  describeFleet(req: { tag: string; fleet: string }): Promise<string[]>;
}

export async function fleetReadBaseline(req: { tag: string; fleet: string }): Promise<number> {
  const act = proxyActivities<FleetBaselineActivities>({ startToCloseTimeout: '2m' });
  return (await act.describeFleet(req)).length;
}

export function fleetBaselineActivities(ec2: EC2Client): FleetBaselineActivities {
  return {
    async describeFleet({ tag, fleet }) {
      const ids: string[] = [];
      let next: string | undefined;
      do {
        const page = await ec2.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: `tag:${tag}`, Values: [fleet] }],
            MaxResults: 1000,
            NextToken: next,
          }),
        );
        for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) ids.push(i.InstanceId as string);
        next = page.NextToken;
      } while (next);
      return ids;
    },
  };
}
