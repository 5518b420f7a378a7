/**
 * Reading a task from either source (event detail, DescribeTasks), the
 * decision rule, and the target's environment.
 */
import { decide, instanceAttributes, attributesMatch } from '../../../functions/shared/discovery/decide';
import { DEFAULT_DISPATCH_PORT, targetFromEnv } from '../../../functions/shared/discovery/target';
import { isStopping, parseTask, taskIdFromArn } from '../../../functions/shared/discovery/task';
import { ConfigError, ValidationError } from '../../../functions/shared/errors';
import { EcsTask } from '../../../scripts/rig/ecs-events';
import { FAKE_TARGET } from '../../helpers/discovery-fakes';
import { describeView, ecsEvent } from './fixtures';

describe('parseTask', () => {
  it('reads the IP from an event (attachment type "eni")', () => {
    const event = ecsEvent('task-running');
    expect(event.detail.attachments[0]?.type).toBe('eni');
    expect(parseTask(event.detail, 'detail')).toMatchObject({ ip: '10.0.0.139', taskId: 'c13b4cb40f1f4fe4a2971f76ae5a47ad', version: 5, healthStatus: 'HEALTHY' });
  });

  it('reads the IP from DescribeTasks (attachment type "ElasticNetworkInterface", Date timestamps)', () => {
    const view = describeView(ecsEvent('task-running').detail);
    expect(view.attachments?.[0]?.type).toBe('ElasticNetworkInterface');
    expect(view.createdAt).toBeInstanceOf(Date);
    expect(parseTask(view, 'DescribeTasks task').ip).toBe('10.0.0.139');
  });

  it('falls back to containers[].networkInterfaces[].privateIpv4Address', () => {
    const { detail } = ecsEvent('task-running');
    detail.attachments = [];
    expect(parseTask(detail, 'detail').ip).toBe('10.0.0.139');
  });

  it('ignores the IP of an attachment that is not an ENI', () => {
    const { detail } = ecsEvent('task-running');
    detail.attachments = [{ id: 'x', type: 'ServiceConnect', status: 'ATTACHED', details: [{ name: 'privateIPv4Address', value: '10.9.9.9' }] }];
    for (const c of detail.containers) c.networkInterfaces = [];
    expect(parseTask(detail, 'detail').ip).toBeUndefined();
  });

  it('has no IP before the ENI is attached', () => {
    expect(parseTask(ecsEvent('task-provisioning').detail, 'detail').ip).toBeUndefined();
  });

  it('accepts a task without version or healthStatus (moto DescribeTasks)', () => {
    const view = describeView(ecsEvent('task-running').detail) as Record<string, unknown>;
    delete view.version;
    delete view.healthStatus;
    expect(parseTask(view, 'DescribeTasks task')).toMatchObject({ version: undefined, healthStatus: 'UNKNOWN' });
  });

  it('accepts an old-format task ARN (UUID, no cluster segment)', () => {
    const { detail } = ecsEvent('task-running');
    detail.taskArn = 'arn:aws:ecs:us-west-2:111122223333:task/5d8f4d0b-7c5e-4a4d-9d5b-0d7f2c8f6a11';
    expect(taskIdFromArn(detail.taskArn)).toBe('5d8f4d0b-7c5e-4a4d-9d5b-0d7f2c8f6a11');
    expect(parseTask(detail, 'detail').taskId).toBe('5d8f4d0b-7c5e-4a4d-9d5b-0d7f2c8f6a11');
  });

  it('names the source and field of a bad value', () => {
    expect(() => parseTask({ taskArn: 'x' }, 'DescribeTasks task')).toThrow(ValidationError);
    expect(() => parseTask({ taskArn: 'x' }, 'DescribeTasks task')).toThrow(/DescribeTasks task\.taskArn: expected an ECS task ARN.*DescribeTasks task\.clusterArn/);
  });

  it.each([
    ['RUNNING', 'RUNNING', false],
    ['PENDING', 'RUNNING', false],
    ['RUNNING', 'STOPPED', true],
    ['DEACTIVATING', 'STOPPED', true],
    ['STOPPING', 'RUNNING', true],
    ['DEPROVISIONING', 'STOPPED', true],
    ['STOPPED', 'STOPPED', true],
  ])('lastStatus %s, desiredStatus %s: stopping is %s', (lastStatus, desiredStatus, stopping) => {
    const { detail } = ecsEvent('task-running');
    Object.assign(detail, { lastStatus, desiredStatus });
    expect(isStopping(parseTask(detail, 'detail'))).toBe(stopping);
  });
});

describe('decide', () => {
  const checked = () => Promise.resolve(true);
  const unchecked = () => Promise.resolve(false);
  const view = (mutate: (d: ReturnType<typeof ecsEvent>['detail']) => void = () => undefined) => {
    const { detail } = ecsEvent('task-running');
    mutate(detail);
    return parseTask(detail, 'detail');
  };

  it.each<[string, boolean, boolean, (d: ReturnType<typeof ecsEvent>['detail']) => void]>([
    ['RUNNING and HEALTHY', true, true, () => undefined],
    ['RUNNING, UNKNOWN, health-checked', false, true, (d) => (d.healthStatus = 'UNKNOWN')],
    ['RUNNING, UNKNOWN, not health-checked', true, false, (d) => (d.healthStatus = 'UNKNOWN')],
    ['RUNNING, UNHEALTHY', false, false, (d) => (d.healthStatus = 'UNHEALTHY')],
    ['desiredStatus STOPPED', false, true, (d) => (d.desiredStatus = 'STOPPED')],
    ['ACTIVATING', false, true, (d) => (d.lastStatus = 'ACTIVATING')],
    ['a lastStatus ECS may add later', false, true, (d) => (d.lastStatus = 'HIBERNATING')],
    ['another service', false, true, (d) => (d.group = 'service:other')],
  ])('%s → register %s', async (_case, register, healthChecked, mutate) => {
    const d = await decide(view(mutate), FAKE_TARGET, healthChecked ? checked : unchecked);
    expect(d.register).toBe(register);
  });

  it('looks the task definition up only for UNKNOWN health', async () => {
    const lookup = jest.fn(checked);
    await decide(view(), FAKE_TARGET, lookup);
    await decide(view((d) => (d.healthStatus = 'UNHEALTHY')), FAKE_TARGET, lookup);
    expect(lookup).not.toHaveBeenCalled();
    await decide(view((d) => (d.healthStatus = 'UNKNOWN')), FAKE_TARGET, lookup);
    expect(lookup).toHaveBeenCalledWith('arn:aws:ecs:us-west-2:111122223333:task-definition/spicedb:7');
  });

  it('compares attributes without the ECS version', () => {
    const t = new EcsTask({ clusterArn: FAKE_TARGET.clusterArn, serviceName: 'spicedb', ip: '10.1.2.3' });
    t.start();
    const attrs = instanceAttributes({ ...parseTask(t.describe(), 'DescribeTasks task'), ip: '10.1.2.3' }, FAKE_TARGET);
    expect(attrs.ECS_TASK_VERSION).toBe('4');
    expect(attributesMatch({ ...attrs, ECS_TASK_VERSION: '9' }, attrs)).toBe(true);
    expect(attributesMatch({ ...attrs, AWS_INSTANCE_IPV4: '10.1.2.4' }, attrs)).toBe(false);
    expect(attributesMatch({ ...attrs, EXTRA: 'x' }, attrs)).toBe(false);
    expect(attributesMatch(undefined, attrs)).toBe(false);
  });
});

describe('targetFromEnv', () => {
  const env = { ECS_CLUSTER_ARN: FAKE_TARGET.clusterArn, ECS_SERVICE_NAME: 'spicedb', CLOUD_MAP_SERVICE_ID: 'srv-abcdefgh12345678' };

  it('reads the target, the dispatch port defaulting to 50053', () => {
    expect(targetFromEnv(env)).toEqual({ clusterArn: FAKE_TARGET.clusterArn, serviceName: 'spicedb', cloudMapServiceId: 'srv-abcdefgh12345678', dispatchPort: DEFAULT_DISPATCH_PORT });
    expect(targetFromEnv({ ...env, DISPATCH_PORT: '50060' }).dispatchPort).toBe(50060);
  });

  it.each([
    ['ECS_CLUSTER_ARN', { ECS_CLUSTER_ARN: undefined }, /ECS_CLUSTER_ARN is required/],
    ['ECS_CLUSTER_ARN', { ECS_CLUSTER_ARN: 'spicedb-cluster' }, /ECS_CLUSTER_ARN must be an ECS cluster ARN/],
    ['ECS_SERVICE_NAME', { ECS_SERVICE_NAME: '' }, /ECS_SERVICE_NAME is required/],
    ['CLOUD_MAP_SERVICE_ID', { CLOUD_MAP_SERVICE_ID: 'spicedb' }, /CLOUD_MAP_SERVICE_ID must be a Cloud Map service id/],
    ['DISPATCH_PORT', { DISPATCH_PORT: '70000' }, /DISPATCH_PORT must be a port/],
    ['DISPATCH_PORT', { DISPATCH_PORT: 'abc' }, /DISPATCH_PORT must be an integer/],
  ])('fails naming %s', (_name, override, message) => {
    const e = () => targetFromEnv({ ...env, ...override });
    expect(e).toThrow(ConfigError);
    expect(e).toThrow(message);
  });
});
