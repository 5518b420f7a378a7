/**
 * The SpiceDB preshared key, read from Secrets Manager by ARN. The secret
 * string is the key itself, or JSON with a `presharedKey` field. The key is
 * never logged or put into an error message.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsErrorName, errorMessage } from '../shared/errors';

/** The secret could not be read or holds no usable key. */
export class SecretError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SecretError';
  }
}

/** The key inside a secret string: a JSON object's `presharedKey`, else the whole (trimmed) string. */
export function keyFromSecretString(secret: string, arn: string): string {
  const trimmed = secret.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      // A key may start with "{" without being JSON; use it as it is.
      return trimmed;
    }
    const key = (parsed as Record<string, unknown> | null)?.presharedKey;
    if (typeof key !== 'string' || key.trim() === '') {
      throw new SecretError(`secret ${arn} is a JSON object without a non-empty string field "presharedKey"`);
    }
    return key.trim();
  }
  if (trimmed === '') throw new SecretError(`secret ${arn} is empty`);
  return trimmed;
}

export async function readPresharedKey(client: SecretsManagerClient, arn: string, signal?: AbortSignal): Promise<string> {
  let secret: string | undefined;
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: arn }), { abortSignal: signal });
    secret = out.SecretString;
  } catch (err) {
    throw new SecretError(`could not read PresharedKeySecretArn ${arn}: ${awsErrorName(err) ?? 'Error'}: ${errorMessage(err)}`, { cause: err });
  }
  if (secret === undefined) throw new SecretError(`secret ${arn} has no SecretString (binary secrets are not supported)`);
  return keyFromSecretString(secret, arn);
}
