/**
 * The drain rule. SpiceDB's dispatch client has no failover: a request hashed
 * to a peer that stopped serving waits until that peer leaves the ring, and a
 * peer leaves the ring only when gRPC re-resolves DNS. gRPC re-resolves at
 * most once per 30 s, triggered by the GOAWAY each dispatch server sends after
 * --dispatch-cluster-max-conn-age (+10 % jitter). So after a task leaves Cloud
 * Map it must keep serving dispatch for at least
 *
 *   record TTL + 30 s resolver floor + max-conn-age x 1.1 + margin
 *
 * and that hold must fit Fargate's 120 s stopTimeout ceiling.
 */

/** TTL of the Cloud Map A records (and the namespace SOA, for negative caching). */
export const DNS_TTL_SECONDS = 5;
/** grpc-go's DNS resolver re-resolves at most this often (fixed inside gRPC). */
export const RESOLVER_MIN_INTERVAL_SECONDS = 30;
/** --dispatch-cluster-max-conn-age: how often each peer's connections are recycled (GOAWAY). */
export const MAX_CONN_AGE_SECONDS = 20;
/** SpiceDB adds up to +-10 % jitter to max-conn-age. */
export const MAX_CONN_AGE_JITTER = 0.1;
/** Slack for event delivery and scheduling. */
export const MARGIN_SECONDS = 10;
/** Fargate's ceiling on a container's stopTimeout. */
export const FARGATE_MAX_STOP_TIMEOUT_SECONDS = 120;

export interface DrainTimings {
  dnsTtlSeconds: number;
  resolverMinIntervalSeconds: number;
  maxConnAgeSeconds: number;
  marginSeconds: number;
}

/** Minimum time a deregistered task must keep serving dispatch, in whole seconds. */
export function drainSeconds(t: DrainTimings): number {
  return Math.ceil(t.dnsTtlSeconds + t.resolverMinIntervalSeconds + t.maxConnAgeSeconds * (1 + MAX_CONN_AGE_JITTER) + t.marginSeconds);
}

export const DEFAULT_TIMINGS: DrainTimings = {
  dnsTtlSeconds: DNS_TTL_SECONDS,
  resolverMinIntervalSeconds: RESOLVER_MIN_INTERVAL_SECONDS,
  maxConnAgeSeconds: MAX_CONN_AGE_SECONDS,
  marginSeconds: MARGIN_SECONDS,
};

/** 5 + 30 + 22 + 10 = 67 s with the defaults. */
export const DRAIN_SECONDS = drainSeconds(DEFAULT_TIMINGS);
/** The drain sidecar's stopTimeout: the hold plus time to exit, within Fargate's ceiling. */
export const DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS = DRAIN_SECONDS + 10;

if (DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS > FARGATE_MAX_STOP_TIMEOUT_SECONDS) {
  throw new Error(`drain hold ${DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS}s exceeds Fargate's ${FARGATE_MAX_STOP_TIMEOUT_SECONDS}s stopTimeout ceiling`);
}
