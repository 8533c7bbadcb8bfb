import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ipv6Groups, ipv6Hex, networkOf } from '../core/util/ip-address.js';

describe('ip-address', () => {
  it('expands IPv6 addresses, with :: anywhere and an IPv4 tail', () => {
    assert.deepEqual(ipv6Groups('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(ipv6Groups('2001:db8::'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(ipv6Groups('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
    assert.deepEqual(ipv6Groups('fe80::1%eth0'), [0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(ipv6Hex('2001:DB8:0:0:1::2'), '20010db8000000000001000000000002');
    assert.throws(() => ipv6Groups('192.0.2.1'), /not an IPv6 address/);
  });

  it('gives the network of an address for a prefix, canonical text', () => {
    assert.equal(networkOf('192.0.2.77', 24, 64), '192.0.2.0/24');
    assert.equal(networkOf('192.0.2.77', 32, 64), '192.0.2.77/32');
    assert.equal(networkOf('203.0.113.200', 25, 64), '203.0.113.128/25');
    assert.equal(networkOf('255.255.255.255', 0, 64), '0.0.0.0/0');
    assert.equal(networkOf('::ffff:192.0.2.77', 24, 64), '192.0.2.0/24');
    assert.equal(networkOf('2001:db8:aa:bb:cc:dd:ee:ff', 24, 64), '2001:db8:aa:bb::/64');
    assert.equal(networkOf('2001:db8:aa:bb:cc:dd:ee:ff', 24, 56), '2001:db8:aa::/56');
    assert.equal(networkOf('2001:0:0:1:0:0:0:1', 24, 128), '2001:0:0:1::1/128');
    assert.equal(networkOf('::1', 24, 64), '::/64');
    assert.equal(networkOf('/var/run/socket', 24, 64), '/var/run/socket');
  });
});
