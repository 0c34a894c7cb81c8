import { describe, expect, it } from 'vitest';
import { ConfigError, loadAppConfig } from '../../src/config.js';

describe('the serving settings', () => {
  it("default to port 443 on every address, no http-01 listener, Let's Encrypt production, renewal 30 days before", () => {
    const s = loadAppConfig({}, 'ingest').serving;
    expect(s.listen).toEqual({ host: '0.0.0.0', port: 443 });
    expect(s.httpListen).toBeNull();
    expect(s.acmeDirectory).toBe('https://acme-v02.api.letsencrypt.org/directory');
    expect(s.acmeEmail).toBeNull();
    expect([s.renewBeforeDays, s.retryMinMs, s.retryMaxMs]).toEqual([30, 3_600_000, 86_400_000]);
  });

  it('read listen addresses, a CA, an e-mail address', () => {
    const s = loadAppConfig(
      {
        MTASTS_HOSTING_LISTEN: '[::]:8443',
        MTASTS_HOSTING_HTTP_LISTEN: '127.0.0.1:8080',
        MTASTS_ACME_DIRECTORY: 'https://acme-staging-v02.api.letsencrypt.org/directory',
        MTASTS_ACME_EMAIL: 'hostmaster@example.com',
      },
      'ingest',
    ).serving;
    expect([s.listen, s.httpListen]).toEqual([
      { host: '::', port: 8443 },
      { host: '127.0.0.1', port: 8080 },
    ]);
    expect(s.acmeEmail).toBe('hostmaster@example.com');
  });

  it('refuse a bad address, URL or e-mail address, naming the variable', () => {
    for (const [variable, value] of [
      ['MTASTS_HOSTING_LISTEN', 'example.com:443'],
      ['MTASTS_HOSTING_LISTEN', '0.0.0.0:65536'],
      ['MTASTS_HOSTING_HTTP_LISTEN', '::1:80'],
      ['MTASTS_ACME_DIRECTORY', 'http://ca.example/directory'],
      ['MTASTS_ACME_EMAIL', 'not an address'],
      ['MTASTS_ACME_RENEW_DAYS', '90'],
    ] as const) {
      expect(() => loadAppConfig({ [variable]: value }, 'ingest'), value).toThrow(ConfigError);
      expect(() => loadAppConfig({ [variable]: value }, 'ingest'), value).toThrow(
        new RegExp(`^${variable} `),
      );
    }
  });
});
