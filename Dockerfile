# Runfleet's control worker and runners (docker-compose.yml runs both from this image).
# Two stages: the build compiles the TypeScript (npm run build) with every dependency; the image
# keeps the build and the production dependencies only, and runs it as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# npm install keeps to the lock (npm 11's `ci` rejects a lock without other platforms' optional packages).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY scripts/bundle-workflows.ts scripts/
RUN npm run build && npm prune --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim
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
