# The codemate image: the operator (`codemate operator`) and the webhook server (`codemate webhook`).
# The session image is separate: setup/docker/Dockerfile.codemate.
ARG NODE_VERSION=24.21.0
# The official Node image, pinned by digest. A build without a registry (`codemate dev build --images`)
# passes a locally made image of the same Node release instead: docs/adr/0008-image-bases.md. (hadolint
# cannot see the tag and digest through the variable, hence its DL3006 exceptions below.)
ARG NODE_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim@sha256:2fe369e969550cde8e867afc3fe370b260140cab4a23d467074295b42163d553

# hadolint ignore=DL3006
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: the only one is the `node` devDependency's, which would fetch a second Node binary
# (126 MB) that the build does not use.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# hadolint ignore=DL3006
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY manifests ./manifests
# The image's non-root `node` user (uid 1000), which the Deployments' securityContext also names. Numeric, so
# that the kubelet can check runAsNonRoot against it.
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/bin/codemate.js"]
CMD ["--help"]
