# The codemate image: the operator (`codemate operator`) and the webhook server (`codemate webhook`).
# The session image is separate: setup/docker/Dockerfile.codemate.
ARG NODE_VERSION=24.21.0

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY manifests ./manifests
USER node
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/bin/codemate.js"]
CMD ["--help"]
