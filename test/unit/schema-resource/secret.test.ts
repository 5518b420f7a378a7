/** Reading the preshared key: both secret forms, and errors that name the ARN but never the value. */
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { keyFromSecretString, readPresharedKey, SecretError } from '../../../functions/schema-resource/secret';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:spicedb-key-AbCdEf';
const sm = mockClient(SecretsManagerClient);
beforeEach(() => sm.reset());

describe('keyFromSecretString', () => {
  it.each([
    ['the key itself', 'k_0123456789abcdef', 'k_0123456789abcdef'],
    ['the key with a trailing newline', 'k_0123456789abcdef\n', 'k_0123456789abcdef'],
    ['JSON with presharedKey', '{"presharedKey":"k_json","other":1}', 'k_json'],
    ['a key that starts with { but is not JSON', '{notjson', '{notjson'],
  ])('reads %s', (_case, secret, key) => {
    expect(keyFromSecretString(secret, ARN)).toBe(key);
  });

  it.each([
    ['JSON without presharedKey', '{"key":"k_value"}', /JSON object without a non-empty string field "presharedKey"/],
    ['an empty string', '  ', /is empty/],
  ])('rejects %s without echoing it', (_case, secret, message) => {
    expect(() => keyFromSecretString(secret, ARN)).toThrow(message);
    try {
      keyFromSecretString(secret, ARN);
    } catch (err) {
      expect((err as Error).message).not.toContain('k_value');
      expect((err as Error).message).toContain(ARN);
    }
  });
});

describe('readPresharedKey', () => {
  it('reads the secret by ARN', async () => {
    sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: 'k_from_sm' });
    await expect(readPresharedKey(new SecretsManagerClient({ region: 'us-east-1' }), ARN)).resolves.toBe('k_from_sm');
  });

  it('names the ARN and the AWS error when the secret cannot be read', async () => {
    sm.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} }));
    const err = await readPresharedKey(new SecretsManagerClient({ region: 'us-east-1' }), ARN).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretError);
    expect((err as Error).message).toBe(`could not read PresharedKeySecretArn ${ARN}: ResourceNotFoundException: Secrets Manager can't find the specified secret.`);
  });

  it('rejects a binary secret', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });
    await expect(readPresharedKey(new SecretsManagerClient({ region: 'us-east-1' }), ARN)).rejects.toThrow(/has no SecretString/);
  });
});
