/** Named errors with `cause`, and narrowing of `unknown` in catch blocks. */

/** Bad input: the message names the field and what was expected. */
export class ValidationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ValidationError';
  }
}

/** A required environment variable is missing or malformed. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function isError(value: unknown): value is Error {
  return value instanceof Error;
}

/** The message of anything thrown. */
export function errorMessage(value: unknown): string {
  return isError(value) ? value.message : String(value);
}

/** The AWS SDK error name (`InstanceNotFound`, `ThrottlingException` ...), if any. */
export function awsErrorName(value: unknown): string | undefined {
  return isError(value) ? value.name : undefined;
}
