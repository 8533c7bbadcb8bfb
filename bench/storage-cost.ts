/**
 * What durable storage costs per message on this machine, outside Node's
 * event loop: the file operations queue-spool does for every accepted
 * message, against appending to one journal file (with and without sharing
 * one fdatasync among a batch). Synchronous calls on one thread, so the
 * figure is this process's CPU (user + system: almost all of it the system
 * calls) without thread-pool hand-offs. The kernel's own threads (journal
 * commits, write-back) are not in it. Patterns alternate over several rounds
 * in fresh directories; medians.
 *
 *   npm run build && node dist/bench/storage-cost.js [--messages 1500] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '1500' }, rounds: { type: 'string', default: '3' } } });
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const content = Buffer.alloc(1100, 'a'); // a 1 KiB message as received, dot-unstuffed
const record = Buffer.alloc(600, 'b'); // queue-spool's JSON record and trailer

interface Pattern {
  readonly name: string;
  /** Stores `count` messages under `dir`. */
  store(dir: string, count: number): void;
}

/**
 * What queue-spool does: create the file (the spool), write the message and
 * the record, fdatasync, close, rename into messages/, fsync that directory.
 * The variants leave steps out to show what each costs (not durable!).
 */
function filePerMessage(name: string, steps: { sync: boolean; move: boolean; directorySyncEvery?: number }): Pattern {
  return {
    name,
    store(dir, count) {
      mkdirSync(join(dir, 'incoming'));
      mkdirSync(join(dir, 'messages'));
      const directory = openSync(join(dir, 'messages'), 'r');
      for (let i = 0; i < count; i++) {
        const incoming = join(dir, 'incoming', String(i));
        const fd = openSync(incoming, 'wx');
        writeSync(fd, content);
        writeSync(fd, record);
        if (steps.sync) fdatasyncSync(fd);
        closeSync(fd);
        if (steps.move) {
          renameSync(incoming, join(dir, 'messages', `${i}.msg`));
          // Under load queue-spool shares one directory fsync among concurrent enqueues.
          const every = steps.directorySyncEvery ?? 1;
          if (i % every === every - 1 || i === count - 1) fsyncSync(directory);
        }
      }
      closeSync(directory);
    },
  };
}

const patterns: Pattern[] = [
  filePerMessage('file per message (queue-spool)', { sync: true, move: true }),
  filePerMessage('  same, directory fsync per 20', { sync: true, move: true, directorySyncEvery: 20 }),
  filePerMessage('  same without the fdatasync', { sync: false, move: true }),
  filePerMessage('  same without rename, dir fsync', { sync: true, move: false }),
  filePerMessage('  create, write, close only', { sync: false, move: false }),
  {
    name: 'journal, fdatasync per message',
    store(dir, count) {
      const fd = openSync(join(dir, 'journal'), 'w');
      for (let i = 0; i < count; i++) {
        writeSync(fd, Buffer.concat([content, record]));
        fdatasyncSync(fd);
      }
      closeSync(fd);
    },
  },
  {
    name: 'journal, one fdatasync per 20',
    store(dir, count) {
      const fd = openSync(join(dir, 'journal'), 'w');
      for (let i = 0; i < count; i++) {
        writeSync(fd, Buffer.concat([content, record]));
        if (i % 20 === 19 || i === count - 1) fdatasyncSync(fd);
      }
      closeSync(fd);
    },
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

const results = new Map<string, { cpu: number[]; wall: number[] }>(patterns.map((p) => [p.name, { cpu: [], wall: [] }]));
const root = mkdtempSync(join(tmpdir(), 'petrel-storage-cost-'));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const pattern of patterns) {
      const dir = join(root, `${round}-${patterns.indexOf(pattern)}`);
      mkdirSync(dir);
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      pattern.store(dir, MESSAGES);
      const cpu = process.cpuUsage(cpuBefore);
      results.get(pattern.name)?.wall.push((performance.now() - started) / MESSAGES);
      results.get(pattern.name)?.cpu.push((cpu.user + cpu.system) / 1000 / MESSAGES);
      // Untimed: write back what this pattern left dirty, so the next one's fsyncs do not pay
      // for it. Directories are removed only at the end, as deleting thousands of files leaves
      // deferred file-system work that would land on whatever runs next.
      execFileSync('sync');
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
const base = median(results.get(patterns[0].name)?.cpu ?? []);
console.log(`${MESSAGES} messages of ${content.length + record.length} bytes per pattern, ${ROUNDS} alternated rounds, medians (under ${tmpdir()})`);
for (const [name, { cpu, wall }] of results) {
  const relative = name === patterns[0].name ? 'the baseline' : `${(base / median(cpu)).toFixed(1)}× less than a file per message`;
  console.log(`  ${name.padEnd(32)} CPU ${median(cpu).toFixed(3)} ms/msg (${relative})   wall ${median(wall).toFixed(3)} ms/msg`);
}
