import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A certificate authority made at test start: a root, an intermediate, and leaf certificates on demand. */
export interface IssuedCert {
  /** PEM of the leaf, followed by the chain when `chain` was asked for. */
  cert: string;
  key: string;
}

export interface LeafOptions {
  names: string[];
  /** Days from now; negative is in the past. */
  notBeforeDays?: number;
  notAfterDays?: number;
  /** Signed by itself instead of the CA. */
  selfSigned?: boolean;
  /** Signed by the intermediate; `chain: false` then leaves the intermediate out (an incomplete chain). */
  viaIntermediate?: boolean;
  chain?: boolean;
}

const DAY = 86_400_000;

function keyPair(): { privatePem: string; forgePublic: forge.pki.rsa.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    privatePem: privateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
  };
}

/**
 * Signs a certificate with Node's native RSA (forge builds the structure; its pure-JS RSA is a hundred times slower,
 * which matters when a benchmark needs thousands of certificates).
 */
function signNative(cert: forge.pki.Certificate, keyPem: string): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption as string;
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  // getTBSCertificate is in node-forge but missing from its type definitions.
  const pki = forge.pki as typeof forge.pki & {
    getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1;
  };
  const tbs = forge.asn1.toDer(pki.getTBSCertificate(cert)).getBytes();
  cert.signature = createSign('sha256').update(Buffer.from(tbs, 'binary')).sign(keyPem).toString('binary');
}

function serial(): string {
  // Positive, 16 bytes.
  const bytes = randomBytes(16);
  // Positive and minimal in DER: the first byte is neither 0x00 (padding) nor above 0x7f (negative).
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

interface Authority {
  cert: forge.pki.Certificate;
  keyPem: string;
}

export class TestCa {
  readonly rootPem: string;
  readonly intermediatePem: string;
  private readonly root: Authority;
  private readonly intermediate: Authority;
  private readonly leafKey = keyPair();

  constructor(name = 'mtasts-bot Test Root') {
    const rootKey = keyPair();
    const root = forge.pki.createCertificate();
    root.publicKey = rootKey.forgePublic;
    root.serialNumber = serial();
    root.validity.notBefore = new Date(Date.now() - 30 * DAY);
    root.validity.notAfter = new Date(Date.now() + 3650 * DAY);
    const rootSubject = [
      { name: 'commonName', value: name },
      { name: 'organizationName', value: 'mtasts-bot tests' },
    ];
    root.setSubject(rootSubject);
    root.setIssuer(rootSubject);
    root.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    signNative(root, rootKey.privatePem);
    this.root = { cert: root, keyPem: rootKey.privatePem };
    this.rootPem = forge.pki.certificateToPem(root);

    const interKey = keyPair();
    const inter = forge.pki.createCertificate();
    inter.publicKey = interKey.forgePublic;
    inter.serialNumber = serial();
    inter.validity.notBefore = new Date(Date.now() - 30 * DAY);
    inter.validity.notAfter = new Date(Date.now() + 1825 * DAY);
    inter.setSubject([
      { name: 'commonName', value: `${name} Intermediate` },
      { name: 'organizationName', value: 'mtasts-bot tests' },
    ]);
    inter.setIssuer(rootSubject);
    inter.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: root.generateSubjectKeyIdentifier().getBytes() },
    ]);
    signNative(inter, rootKey.privatePem);
    this.intermediate = { cert: inter, keyPem: interKey.privatePem };
    this.intermediatePem = forge.pki.certificateToPem(inter);
  }

  issue(options: LeafOptions): IssuedCert {
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.leafKey.forgePublic;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() + (options.notBeforeDays ?? -1) * DAY);
    cert.validity.notAfter = new Date(Date.now() + (options.notAfterDays ?? 90) * DAY);
    const subject = [{ name: 'commonName', value: options.names[0] ?? 'unnamed' }];
    cert.setSubject(subject);
    const signer = options.selfSigned ? null : options.viaIntermediate ? this.intermediate : this.root;
    cert.setIssuer(signer ? signer.cert.subject.attributes : subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: options.names.map((value) => ({ type: 2, value })) },
    ]);
    signNative(cert, signer ? signer.keyPem : this.leafKey.privatePem);
    let pem = forge.pki.certificateToPem(cert);
    if (options.viaIntermediate && options.chain !== false) pem += this.intermediatePem;
    return { cert: pem, key: this.leafKey.privatePem };
  }
}
