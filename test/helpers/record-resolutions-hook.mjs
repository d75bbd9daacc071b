import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (process.env.RECORD_RESOLUTIONS) appendFileSync(process.env.RECORD_RESOLUTIONS, `${result.url}\n`);
  return result;
}
