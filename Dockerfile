# syntax=docker/dockerfile:1
# One image for every Longhaul app. There is no build step: the apps run their TypeScript with tsx,
# so the compose services only differ in `command`, e.g.
#   node --import tsx apps/api/src/index.ts      (the default below)
#   node --import tsx apps/worker/src/index.ts
#   node --import tsx apps/sim/src/index.ts
#   node --import tsx scripts/longhaul.ts migrate | create-tenant <name>

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS pnpm
# pnpm from the npm registry rather than corepack, whose signature check fails behind some registry
# mirrors. Keep in step with `packageManager` in package.json (test/compose.test.ts checks it).
RUN npm install --global pnpm@10.34.8 && pnpm --version

# Only the files that decide what `pnpm install` does, at their workspace paths. Listing them with
# find (instead of one COPY per package) means a new workspace package needs no Dockerfile change;
# the install layer below is still reused while these files are byte-for-byte unchanged.
FROM pnpm AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -path ./node_modules -prune -o \
      \( -name package.json -o -name pnpm-lock.yaml -o -name pnpm-workspace.yaml -o -name .npmrc \) \
      -not -path '*/node_modules/*' -print \
    | xargs cp --parents --target-directory=/manifests

FROM pnpm AS deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
# Dev dependencies are needed at run time: tsx is what runs the apps.
RUN --mount=type=cache,id=longhaul-pnpm-store,target=/pnpm-store \
    pnpm install --frozen-lockfile --prod=false --store-dir /pnpm-store

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
# Owned by root and read-only to the app user: the running process cannot rewrite its own code.
COPY --from=deps /app/ ./
COPY . .
ENV NODE_ENV=production
# The `node` user (uid 1000) ships with the official image. tsx keeps its cache under /tmp.
USER node
EXPOSE 3000 3100
CMD ["node", "--import", "tsx", "apps/api/src/index.ts"]
