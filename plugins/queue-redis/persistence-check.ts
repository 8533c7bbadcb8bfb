import { type Logger, type RedisClient, redisMasters } from 'petrel';

/**
 * Redis keeps acknowledged mail across its own crash only with the
 * append-only file on. Read each master's settings at start and say plainly
 * what a crash would cost (docs/operations.md explains how to configure it):
 *
 * - appendonly no: everything since the last snapshot is lost: ERROR;
 * - appendfsync no: the OS decides when to write; an OS crash loses data: WARN;
 * - appendfsync everysec: up to a second of mail on a power loss, none on a Redis crash: INFO;
 * - appendfsync always: nothing acknowledged is lost.
 */
export async function checkPersistence(redis: RedisClient, log: Logger): Promise<void> {
  for (const master of redisMasters(redis)) {
    const where = `${master.options.host ?? '?'}:${master.options.port ?? '?'}`;
    let appendonly: string | undefined;
    let appendfsync: string | undefined;
    try {
      appendonly = await configValue(master, 'appendonly');
      appendfsync = await configValue(master, 'appendfsync');
    } catch (error) {
      log.warn(
        { redis: where, err: error, code: 'PETREL_REDIS_PERSISTENCE' },
        `could not read the persistence settings of Redis ${where} (CONFIG GET refused: ${(error as Error).message}); make sure appendonly is yes, or acknowledged mail can be lost when Redis crashes`,
      );
      continue;
    }
    if (appendonly !== 'yes') {
      log.error(
        { redis: where, appendonly, appendfsync, code: 'PETREL_REDIS_PERSISTENCE' },
        `!!! Redis ${where} runs with appendonly ${appendonly ?? '(unknown)'}: mail Petrel acknowledged with 250 WILL BE LOST if Redis restarts or crashes. Set "appendonly yes" and "appendfsync always" (or everysec) in redis.conf — see docs/operations.md`,
      );
    } else if (appendfsync === 'no') {
      log.warn(
        { redis: where, appendonly, appendfsync, code: 'PETREL_REDIS_PERSISTENCE' },
        `Redis ${where} uses appendfsync no: acknowledged mail can be lost if the machine crashes; use "appendfsync always" (or everysec)`,
      );
    } else if (appendfsync === 'everysec') {
      log.info({ redis: where, appendonly, appendfsync }, `Redis ${where} uses appendfsync everysec: a power loss can cost up to one second of acknowledged mail`);
    }
  }
}

async function configValue(master: RedisClient, name: string): Promise<string | undefined> {
  const reply = (await master.config('GET', name)) as string[];
  return reply[1];
}
