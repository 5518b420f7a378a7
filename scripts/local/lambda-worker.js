// One "Lambda container": loads a function's bundle once (so module-scope
// clients live as long as the container), then runs invocations sent by the
// parent over IPC with a Lambda-like context. Plain JS: it runs the bundle
// exactly as Lambda's Node runtime would, without a TypeScript loader.
'use strict';
const { randomUUID } = require('node:crypto');

const bundle = process.env.LOCAL_LAMBDA_BUNDLE;
const exportName = process.env.LOCAL_LAMBDA_EXPORT || 'handler';
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME || 'local';
const handler = require(bundle)[exportName];
if (typeof handler !== 'function') {
  throw new Error(`${bundle} does not export a function named ${exportName}`);
}

process.on('message', async (msg) => {
  const deadline = Date.now() + msg.timeoutMs;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '256',
    awsRequestId: msg.requestId || randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(msg.event, context);
    process.send({ id: msg.id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    process.send({ id: msg.id, ok: false, error: { name: err && err.name, message: err && err.message ? err.message : String(err) } });
  }
});
