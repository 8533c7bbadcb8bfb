import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from './harness/temp-dir.js';

const UNIT = join(process.cwd(), 'docs', 'systemd', 'petrel.service');

/** The `Key=value` lines of a unit (comments and sections left out); a key may repeat. */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1], [...(found.get(match[1]) ?? []), match[2]]);
  }
  return found;
}

/**
 * The variant operations.md describes for starting as root and letting Petrel
 * switch users: no User=/Group=/AmbientCapabilities=, and the commented
 * capability bounding set in force.
 */
function startAsRootVariant(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^(User|Group|AmbientCapabilities|CapabilityBoundingSet)=/.test(line))
    .map((line) => line.replace(/^# (CapabilityBoundingSet=.*)$/, '$1'))
    .join('\n');
}

function analyze(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the shipped systemd unit (docs/systemd/petrel.service)', () => {
  const temp = tempDir();
  const text = readFileSync(UNIT, 'utf8');
  before(() => {
    const present = spawnSync('systemd-analyze', ['--version']);
    assert.equal(present.error, undefined, 'systemd-analyze is missing: install the systemd package (apt-get install systemd; .ci/run does)');
  });
  after(() => temp.remove());

  it('passes systemd-analyze verify without a warning', () => {
    const result = analyze('verify', UNIT);
    assert.equal(result.stderr, '', 'no warning');
    assert.equal(result.status, 0);
  });

  it('is hardened, reloads with SIGHUP and restarts on failure', () => {
    const unit = directives(text);
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ReadWritePaths: '/var/lib/petrel',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      User: 'petrel',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      ExecReload: '/bin/kill -HUP $MAINPID',
      Restart: 'on-failure',
      RestartPreventExitStatus: '64 77 78',
      ExecStart: '/usr/bin/env petrel start -c /etc/petrel/mta.config.yaml',
    };
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(unit.get(key), [value], key);
    // Three listeners of limits.clients (1000) each, plus outgoing connections and queue files.
    assert.ok(Number(unit.get('LimitNOFILE')?.[0]) >= 3 * 1000 + 1000, 'LimitNOFILE covers maxClients');
    const exposure = analyze('security', '--offline=true', UNIT);
    const score = Number(/Overall exposure level for petrel\.service: ([\d.]+)/.exec(exposure.stdout)?.[1]);
    assert.ok(score <= 4, `systemd-analyze security rates it ${score} (${exposure.stdout.split('\n').at(-2)})`);
  });

  it('the start-as-root variant the comments describe verifies too, with the capabilities switching users needs', () => {
    const file = join(temp.path, 'petrel.service');
    writeFileSync(file, startAsRootVariant(text));
    const unit = directives(readFileSync(file, 'utf8'));
    assert.equal(unit.get('User'), undefined);
    assert.deepEqual(unit.get('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE']);
    const result = analyze('verify', file);
    assert.equal(result.stderr, '', 'no warning');
    assert.equal(result.status, 0);
  });
});
