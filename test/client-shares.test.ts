import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientShares, type ShareLimits } from '../core/smtp/client-shares.js';

/** The network arithmetic behind the per-client shares; the shares over real sockets are in connection-limits.test.ts. */
describe('ClientShares', () => {
  const limits: ShareLimits = { clientsPerAddress: 2, clientsPerNetwork: 3, clientLimitExceptions: ['2001:db8:ffff::/48'] };

  it('counts IPv6 clients per address and per /64', () => {
    const shares = new ClientShares();
    assert.equal(shares.admit('2001:db8::1', limits).admitted, true);
    assert.equal(shares.admit('2001:db8::1', limits).admitted, true);
    assert.deepEqual(shares.admit('2001:db8::1', limits), { admitted: false, over: 'address', limit: 2 });
    assert.equal(shares.admit('2001:db8::2', limits).admitted, true, 'another host of the same /64');
    assert.deepEqual(shares.admit('2001:db8::3', limits), { admitted: false, over: 'network', limit: 3 });
    assert.equal(shares.admit('2001:db8:0:1::1', limits).admitted, true, 'the next /64 is another network');
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address, per /24', () => {
    const shares = new ClientShares();
    assert.equal(shares.admit('192.0.2.1', limits).admitted, true);
    assert.equal(shares.admit('::ffff:192.0.2.1', limits).admitted, true);
    assert.deepEqual(shares.admit('::ffff:192.0.2.1', limits), { admitted: false, over: 'address', limit: 2 });
    assert.equal(shares.admit('192.0.2.200', limits).admitted, true);
    assert.deepEqual(shares.admit('192.0.2.201', limits), { admitted: false, over: 'network', limit: 3 });
  });

  it('gives a share back once, and does not count exceptions or limits of 0', () => {
    const shares = new ClientShares();
    const first = shares.admit('198.51.100.7', limits);
    shares.admit('198.51.100.7', limits);
    assert.equal(shares.admit('198.51.100.7', limits).admitted, false);
    if (!first.admitted) assert.fail('admitted');
    first.release();
    first.release();
    assert.equal(shares.admit('198.51.100.7', limits).admitted, true, 'one slot came back');
    assert.equal(shares.admit('198.51.100.7', limits).admitted, false, 'and only one');
    for (let i = 0; i < 10; i++) assert.equal(shares.admit('2001:db8:ffff::9', limits).admitted, true);
    const unlimited = { clientsPerAddress: 0, clientsPerNetwork: 0, clientLimitExceptions: [] };
    for (let i = 0; i < 10; i++) assert.equal(shares.admit('203.0.113.1', unlimited).admitted, true);
  });
});
