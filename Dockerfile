# syntax=docker/dockerfile:1
# One image for every Longhaul app. It holds the compiled JavaScript (`npm run build`) and the
# production dependencies only, and runs with plain node; the compose services only differ in
# `command`:
#   node apps/api/dist/index.js        (the default below)
#   node apps/worker/dist/index.js
#   node apps/sim/dist/index.js
#   node apps/cli/dist/index.js migrate | create-tenant <name> | tenant limits <tenant_id> [--rpm N] [--tpm N]
#
# Stages: `build` installs every dependency, compiles and collects what runs (scripts/collect-runtime.sh);
# `prod-deps` installs the production dependencies of the same lockfile; `runtime` is those two
# side by side, at the workspace paths, without TypeScript sources, compilers or test tools.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS pnpm
# pnpm from the npm registry rather than corepack, whose signature check fails behind some registry
# mirrors. Keep in step with `packageManager` in package.json (test/compose.test.ts checks it).
RUN npm install --global pnpm@10.34.8 && pnpm --version

# Only the files that decide what `pnpm install` does, at their workspace paths. Listing them with
# find (instead of one COPY per package) means a new workspace package needs no Dockerfile change;
# the install layers below are still reused while these files are byte-for-byte unchanged.
FROM pnpm AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -path ./node_modules -prune -o \
      \( -name package.json -o -name pnpm-lock.yaml -o -name pnpm-workspace.yaml -o -name .npmrc \) \
      -not -path '*/node_modules/*' -print \
    | xargs cp --parents --target-directory=/manifests

FROM pnpm AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,id=longhaul-pnpm-store,target=/pnpm-store \
    pnpm install --frozen-lockfile --prod=false --store-dir /pnpm-store
COPY . .
RUN pnpm exec turbo run build \
 && sh scripts/collect-runtime.sh /runtime

FROM pnpm AS prod-deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
# The lockfile resolves some optional peer dependencies from the workspace root's dev tools
# (valibot's typescript, drizzle-orm's @types/pg); nothing loads them at run time, so they go,
# with the links to them.
RUN --mount=type=cache,id=longhaul-pnpm-store,target=/pnpm-store \
    pnpm install --frozen-lockfile --prod --store-dir /pnpm-store \
 && rm -rf node_modules/.pnpm/typescript@* node_modules/.pnpm/@types+* node_modules/.pnpm/undici-types@* \
 && find node_modules -xtype l -delete

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
# Owned by root and read-only to the app user: the running process cannot rewrite its own code.
COPY --from=prod-deps /app/ ./
COPY --from=build /runtime/ ./
ENV NODE_ENV=production
# The `node` user (uid 1000) ships with the official image.
USER node
EXPOSE 3000 3100
CMD ["node", "apps/api/dist/index.js"]
