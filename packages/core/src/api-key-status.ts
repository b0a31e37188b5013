/**
 * A tenant API key's lifecycle: active until it expires (its `expires_at` passes) or is revoked.
 * Revocation is sticky and is the one write (@longhaul/db `revokeApiKey`, guarded by
 * `revoked_at is null`); expiry is a matter of time, so it is derived here, never stored.
 */

export const ApiKeyStatus = {
  Active: 'active',
  Expired: 'expired',
  Revoked: 'revoked',
} as const;
export type ApiKeyStatus = (typeof ApiKeyStatus)[keyof typeof ApiKeyStatus];

/** The longest `expires_in_days` (API) or `--expires-in-days` (CLI) a key can be made with: ten years. */
export const API_KEY_MAX_DAYS = 3650;

/** A key's status at `now`; a revoked key is revoked whether or not it has also expired. */
export function apiKeyStatus(key: { expiresAt: Date | null; revokedAt: Date | null }, now: Date): ApiKeyStatus {
  if (key.revokedAt) return ApiKeyStatus.Revoked;
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return ApiKeyStatus.Expired;
  return ApiKeyStatus.Active;
}
