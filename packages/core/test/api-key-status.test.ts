import { describe, expect, it } from 'vitest';
import { apiKeyStatus } from '../src/index.ts';

describe('apiKeyStatus', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const later = new Date('2026-01-02T00:00:00Z');
  it('is active until it expires or is revoked; revoked wins over expired', () => {
    expect(apiKeyStatus({ expiresAt: null, revokedAt: null }, now)).toBe('active');
    expect(apiKeyStatus({ expiresAt: later, revokedAt: null }, now)).toBe('active');
    expect(apiKeyStatus({ expiresAt: now, revokedAt: null }, now)).toBe('expired');
    expect(apiKeyStatus({ expiresAt: now, revokedAt: now }, later)).toBe('revoked');
    expect(apiKeyStatus({ expiresAt: null, revokedAt: later }, now)).toBe('revoked');
  });
});
