import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { LoadOptions, LoadResult } from './load-options.js';

const BINARY = '/usr/sbin/smtp-source';

export function smtpSourceAvailable(): boolean {
  return existsSync(BINARY);
}

/** Postfix's load generator (apt-get install postfix; stop the daemon it starts). */
export function runSmtpSource(options: LoadOptions): Promise<LoadResult> {
  const args = [
    '-s', String(options.concurrency),
    '-m', String(options.messages),
    '-l', String(options.size),
    '-r', String(options.recipients),
    '-f', options.from,
    '-t', options.to,
    '-M', 'loadgen.bench.test',
  ];
  if (options.reuse) args.push('-d');
  args.push(`${options.host}:${options.port}`);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(BINARY, args, { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (error) return reject(new Error(`smtp-source failed: ${stderr || error.message}`));
      resolve({ generator: 'smtp-source', seconds, accepted: options.messages, failed: 0 });
    });
  });
}
