import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { headerFields } from './fixtures/queued.js';
import { loadRfc7208Suite, type SpfCase } from './fixtures/rfc7208-suite.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * The RFC 7208 test suite, run live: for each case a client connects to a
 * real Petrel, takes the case's address with XCLIENT (trusted from
 * loopback), says the case's HELO and MAIL FROM and sends a message; the
 * SPF result is read from the Received-SPF header of the queued message,
 * with the mailauth plugin doing the check and the case's zone data served
 * through the injected DNS.
 */

/**
 * Inputs SMTP itself refuses before SPF is ever checked, and why. The test
 * checks that they are indeed refused, so this list cannot go stale.
 */
const REFUSED_BY_SMTP: Readonly<Record<string, string>> = {
  emptylabel: 'MAIL FROM:<lyme.eater@A...example.com>: a domain has no empty labels (RFC 5321 4.1.2 Domain); 501 5.1.7',
  nolocalpart: 'MAIL FROM:<@example.net>: a Mailbox needs a Local-part of one atom or more (RFC 5321 4.1.2); 501 5.1.7',
  'invalid-hello-macro': 'HELO "JUMPIN\' JUPITER": EHLO takes one domain or address literal, no space (RFC 5321 4.1.1.1); 501',
};

const scenarios = loadRfc7208Suite();

describe('RFC 7208 test suite over SMTP', () => {
  it('is the whole suite: 203 cases', () => {
    assert.equal(scenarios.flatMap((scenario) => scenario.cases).length, 203);
  });

  for (const scenario of scenarios) {
    describe(scenario.description, () => {
      let server: TestServer;
      before(async () => {
        server = await startTestServer(
          {
            listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', xclient: ['127.0.0.0/8'] }],
            delivery: { enabled: false },
            plugins: [
              {
                name: 'mailauth',
                options: {
                  skipNetworks: [],
                  spf: { fail: 'ignore', softfail: 'ignore', neutral: 'ignore', none: 'ignore', temperror: 'ignore', permerror: 'ignore' },
                },
              },
              { name: 'relay-access' },
              { name: 'queue-spool' },
            ],
          },
          { dns: scenario.dns() },
        );
      });
      after(() => server.stop());

      for (const spfCase of scenario.cases) {
        const refusal = REFUSED_BY_SMTP[spfCase.id];
        if (refusal) {
          it(`${spfCase.id}: refused by SMTP (${refusal})`, async () => {
            const outcome = await deliver(server, spfCase);
            assert.ok('refused' in outcome, `expected SMTP to refuse the case, but SPF said ${JSON.stringify(outcome)}`);
          });
          continue;
        }
        it(`${spfCase.id}: ${spfCase.results.join(' or ')}`, async () => {
          const outcome = await deliver(server, spfCase);
          assert.ok('spf' in outcome, `${spfCase.description}\nSMTP refused: ${'refused' in outcome ? outcome.refused : ''}`);
          assert.ok(spfCase.results.includes(outcome.spf), `${spfCase.description}\nexpected ${spfCase.results.join(' or ')}, Petrel recorded: ${outcome.header}`);
        });
      }
    });
  }
});

type Outcome = { spf: string; header: string } | { refused: string };

/** One SMTP transaction as the case describes it; the SPF result recorded on the queued message, or the refusal. */
async function deliver(server: TestServer, spfCase: SpfCase): Promise<Outcome> {
  const client = await server.client();
  try {
    const address = spfCase.host.includes(':') ? `IPV6:${spfCase.host}` : spfCase.host;
    await client.command(`XCLIENT ADDR=${address}`, /^220 /);
    const steps: [string, RegExp][] = [
      [`EHLO ${spfCase.helo}`, /^250 /],
      [`MAIL FROM:<${envelopeAddress(spfCase.mailfrom)}>`, /^250 /],
      ['RCPT TO:<postmaster@localhost>', /^250 /],
      ['DATA', /^354 /],
    ];
    for (const [command, expected] of steps) {
      client.send(command);
      const reply = await client.reply();
      if (!expected.test(reply.raw.split('\n').pop()!)) return { refused: `${command} → ${reply.raw}` };
    }
    client.write(sampleMessage({ to: 'postmaster@localhost', subject: spfCase.id }));
    const queued = await client.command('.', /^250 /);
    const id = /queued as (\S+)/.exec(queued.raw)![1];
    const header = headerFields(await queuedText(server, id)).find((field) => /^Received-SPF:/i.test(field)) ?? '(no Received-SPF)';
    return { spf: /^Received-SPF:\s*(\w+)/i.exec(header)?.[1] ?? '', header };
  } finally {
    await client.quit();
  }
}

/** The address as MAIL FROM carries it: a local part that is not a dot-atom is quoted (RFC 5321 4.1.2). */
function envelopeAddress(mailfrom: string): string {
  const at = mailfrom.lastIndexOf('@');
  if (at <= 0) return mailfrom;
  const local = mailfrom.slice(0, at);
  const dotAtom = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local);
  return `${dotAtom ? local : `"${local.replace(/(["\\])/g, '\\$1')}"`}${mailfrom.slice(at)}`;
}

async function queuedText(server: TestServer, id: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await server.petrel.queue.read(id)) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
