import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, readClientHello } from '../../src/hosting/client-hello.js';
import { clientHello, realClientHello } from './hello-bytes.js';

describe('readClientHello', () => {
  it("reads the server name and ALPN protocols of Node's own ClientHello", async () => {
    const hello = await realClientHello('MTA-STS.Example.com', ['acme-tls/1']);
    expect(readClientHello(hello)).toEqual({
      kind: 'hello',
      serverName: 'mta-sts.example.com',
      alpn: ['acme-tls/1'],
    });
  });

  it('asks for more bytes until the whole ClientHello is in, at every cut', async () => {
    const hello = await realClientHello('mta-sts.example.com');
    for (let cut = 0; cut < hello.length; cut += 7)
      expect(readClientHello(hello.subarray(0, cut)).kind).toBe('more');
    expect(readClientHello(hello)).toMatchObject({
      kind: 'hello',
      serverName: 'mta-sts.example.com',
      alpn: [],
    });
  });

  it('reassembles a ClientHello split over several records', () => {
    const hello = clientHello({ sni: 'mta-sts.example.org', alpn: ['http/1.1'], recordSize: 10 });
    expect(readClientHello(hello)).toEqual({
      kind: 'hello',
      serverName: 'mta-sts.example.org',
      alpn: ['http/1.1'],
    });
  });

  it('has no server name without SNI, and refuses an IP literal, a huge or malformed name', () => {
    expect(readClientHello(clientHello({}))).toEqual({ kind: 'hello', serverName: null, alpn: [] });
    for (const sni of [
      '127.0.0.1',
      '::1',
      `${'a'.repeat(300)}.example`,
      'mta-sts..example.com',
      'x',
      'a b.com',
    ])
      expect(readClientHello(clientHello({ sni })).kind, sni).toBe('bad');
    const huge = clientHello({ sni: `${'a.'.repeat(20000)}com` });
    expect(readClientHello(huge)).toMatchObject({ kind: 'bad' });
  });

  it('refuses what is not TLS: HTTP, a wrong record type, a forbidden record length', () => {
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x17, 3, 3, 0, 5]))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x16, 3, 1, 0x48, 0x01]))).toMatchObject({ kind: 'bad' });
    expect(readClientHello(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0]))).toMatchObject({ kind: 'bad' });
  });

  it('caps the bytes it waits for', () => {
    const records = clientHello({ sni: 'mta-sts.example.com', alpn: ['x'.repeat(200)], recordSize: 1 });
    const many = Buffer.concat(Array.from({ length: 200 }, () => records));
    expect(many.length).toBeGreaterThan(MAX_CLIENT_HELLO_BYTES);
    expect(readClientHello(many).kind).not.toBe('more');
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const withHeader = Buffer.concat([Buffer.from([0x16, 3, 1, 0, bytes.length & 0xff]), bytes]);
        expect(['more', 'bad', 'hello']).toContain(readClientHello(Buffer.from(bytes)).kind);
        expect(['more', 'bad', 'hello']).toContain(readClientHello(withHeader).kind);
      }),
      { numRuns: 2000 },
    );
  });
});
