/**
 * The benchmark's population of domains: 70% on three shared providers' MX hosts, the rest with two MX hosts of
 * their own, and a share with faults. Deterministic: domain i is always built the same way.
 */

export type Fault = 'none' | 'mx-cert-expired' | 'no-starttls' | 'policy-404' | 'mx-not-in-policy';

export interface BenchDomain {
  name: string;
  mx: string[];
  /** Own MX hosts (served with the domain's own certificate), or a provider's. */
  ownMx: boolean;
  fault: Fault;
}

export const PROVIDERS = [0, 1, 2].map((p) => [`mx1.provider${p}.bench`, `mx2.provider${p}.bench`]);

const FAULTS: Fault[] = ['mx-cert-expired', 'no-starttls', 'policy-404', 'mx-not-in-policy'];

export function benchDomain(i: number): BenchDomain {
  const name = `d${i}.bench`;
  const ownMx = i % 10 >= 7;
  const mx = ownMx ? [`mx1.${name}`, `mx2.${name}`] : (PROVIDERS[i % 3] ?? []);
  // One domain in twenty has a fault; the kinds take turns. Certificate and STARTTLS faults need own MX hosts.
  let fault: Fault = 'none';
  if (i % 20 === 19) {
    const kind = FAULTS[Math.floor(i / 20) % FAULTS.length] ?? 'none';
    fault = !ownMx && (kind === 'mx-cert-expired' || kind === 'no-starttls') ? 'policy-404' : kind;
  }
  return { name, mx, ownMx, fault };
}

/** A distinct loopback address for host number k (k >= 1), in 127.64.0.0/10. */
export function address(k: number): string {
  return `127.${64 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
}
