# Runfleet's control worker and runners (docker-compose.yml runs both from this image).
FROM node:20-bookworm-slim

WORKDIR /app

# All dependencies, dev ones included: tsx runs the TypeScript sources, there is no build step.
COPY package.json package-lock.json ./
# npm install keeps to the lock (npm 11's `ci` rejects a lock without other platforms' optional packages).
RUN npm install --no-audit --no-fund && npm cache clean --force

COPY . .

# Runner workspaces, logs and identity live under RUNFLEET_HOME; the app itself stays read-only.
ENV RUNFLEET_HOME=/home/node/.runfleet \
    TEMPORAL_ADDRESS=temporal:7233 \
    TEMPORAL_NAMESPACE=default
USER node

CMD ["node", "bin/runfleet", "worker"]
