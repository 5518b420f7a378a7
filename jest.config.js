// Two projects: `unit` (no network, no processes) and `integration` (real
// spicedb, PostgreSQL, moto, zed and template tools started by scripts/rig).
const transform = { '^.+\\.ts$': ['ts-jest', { isolatedModules: true }] };

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // Real servers start per suite; allow for their start-up.
      testTimeout: 120000,
      slowTestThreshold: 60,
    },
  ],
};
