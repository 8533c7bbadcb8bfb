/**
 * Petrel's test harness, for our own tests and for plugin authors:
 * `import { startTestServer, SmtpTestClient } from 'petrel/testing'`.
 */
export { startTestServer } from './test-server.js';
export type { TestServer, TestServerOptions } from './test-server.js';
export { SmtpTestClient, dotStuff, sampleMessage } from './smtp-client.js';
export type { Reply } from './smtp-client.js';
export { FakeDns } from './fake-dns.js';
export type { FakeRecords } from './fake-dns.js';
export { LogCapture } from './log-capture.js';
export type { LogLine } from './log-capture.js';
export { testCertificate } from './certificates.js';
export type { TestCertificate } from './certificates.js';
export { tempDir } from './temp-dir.js';
