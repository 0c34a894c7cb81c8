import type { DnsRecord, HostingSnippets } from './plan-types.js';

/** What a snippet serves: the policy host and the policy file of one step. */
export interface SnippetSource {
  policyHost: { name: string };
  policyText: string;
}

/**
 * Web-server configurations that serve one policy file as senders require: HTTPS, the exact path, text/plain, status
 * 200, no redirect; everything else on the policy host answers 404. Certificate paths follow certbot's layout.
 */
export function hostingSnippets(source: SnippetSource): HostingSnippets {
  const host = source.policyHost.name;
  const live = `/etc/letsencrypt/live/${host}`;
  return {
    nginx: nginxSnippet(host, live, source.policyText),
    apache: apacheSnippet(host, live),
    caddy: caddySnippet(host, source.policyText),
  };
}

function nginxSnippet(host: string, live: string, policyText: string): string {
  const body = policyText.replace(/\n/g, '\\n');
  return `server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name ${host};
    ssl_certificate     ${live}/fullchain.pem;
    ssl_certificate_key ${live}/privkey.pem;

    # The policy, served directly: status 200, text/plain, no redirect.
    location = /.well-known/mta-sts.txt {
        default_type text/plain;
        return 200 "${body}";
    }
    location / {
        return 404;
    }
}
`;
}

function apacheSnippet(host: string, live: string): string {
  return `# Save the policy as /var/www/${host}/.well-known/mta-sts.txt, then:
<VirtualHost *:443>
    ServerName ${host}
    DocumentRoot /var/www/${host}
    SSLEngine on
    SSLCertificateFile    ${live}/fullchain.pem
    SSLCertificateKeyFile ${live}/privkey.pem

    # No Redirect or RewriteRule may apply here: senders do not follow redirects.
    <Location "/.well-known/mta-sts.txt">
        ForceType text/plain
    </Location>
    RedirectMatch 404 "^/(?!\\.well-known/mta-sts\\.txt$)"
</VirtualHost>
`;
}

function caddySnippet(host: string, policyText: string): string {
  return `${host} {
    # Caddy obtains and renews the certificate for ${host} itself.
    @policy path /.well-known/mta-sts.txt
    handle @policy {
        header Content-Type "text/plain; charset=utf-8"
        respond \`${policyText}\` 200
    }
    handle {
        respond 404
    }
}
`;
}

/** Records as a BIND zone file fragment ($ORIGIN-independent: fully qualified names); empty for no records. */
export function bindFragment(source: { records: readonly DnsRecord[] }): string {
  if (source.records.length === 0) return '';
  const width = Math.max(...source.records.map((r) => r.name.length)) + 2;
  return source.records
    .map(
      (r) => `${`${r.name}.`.padEnd(width)}${String(r.ttl).padEnd(6)}IN ${r.type.padEnd(6)}${bindValue(r)}`,
    )
    .join('\n');
}

function bindValue(r: DnsRecord): string {
  if (r.type === 'TXT') return `"${r.value.replace(/["\\]/g, '\\$&')}"`;
  if (r.type === 'MX') return `${r.priority ?? 10} ${r.value}.`;
  return r.value;
}
