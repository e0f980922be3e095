# Runfleet's control worker and runners (docker-compose.yml runs both from this image).
# Two stages: the build compiles the TypeScript (npm run build) with every dependency; the image
# keeps the build and the production dependencies only, and runs it as a non-root user.
# The base: Node.js 20 on Debian bookworm. A machine that cannot pull it builds a stand-in from
# Debian's packages and Node's own binary (scripts/image) and names it with --build-arg NODE_IMAGE.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# A build behind a TLS-intercepting proxy names its CA bundle for npm (mounted with -v, see
# scripts/image); a build stage's ARG never reaches the image.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
# npm install keeps to the lock (npm 11's `ci` rejects a lock without other platforms' optional packages).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY scripts/bundle-workflows.ts scripts/build-native.ts scripts/
# The process driver's native supervisor: built where the stage has a C compiler (the slim base has
# none: the image's runners then supervise tasks with the shell script, and say so).
COPY native native
# The Temporal core's native library ships for five platforms: keep this one's (about 110 MB less).
RUN npm run build && npm prune --omit=dev && npm cache clean --force \
  && keep="$(node -p '({x64: "x86_64", arm64: "aarch64"})[process.arch] + "-unknown-linux-gnu"')" \
  && cd node_modules/@temporalio/core-bridge/releases \
  && test -d "$keep" && find . -mindepth 1 -maxdepth 1 ! -name "$keep" -exec rm -rf {} +

FROM ${NODE_IMAGE}
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
# No sources in the image: bin/runfleet runs the build.
COPY bin bin

# Runner workspaces, logs and identity live under RUNFLEET_HOME; the app itself stays read-only.
ENV RUNFLEET_HOME=/home/node/.runfleet \
    TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default
USER node

CMD ["node", "bin/runfleet", "worker"]
