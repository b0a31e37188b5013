/** `@longhaul/api/openapi`: Longhaul's OpenAPI document, for the typed client and the contract test. */
export { buildOpenApiDocument, type OpenApiDocument } from './document.ts';
export { mountedRoutes } from './mounted-routes.ts';
export { OPERATIONS } from './operations.ts';
