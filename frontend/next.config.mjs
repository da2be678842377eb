// A static export: the pages are plain files that any static server (the api's origin in local
// mode, the frontend image in Kubernetes) can serve; every request for data goes to /api/v1
// and /ws on the same origin.
const config = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  // Type errors fail the build (tsc); no ESLint setup is shipped.
  eslint: { ignoreDuringBuilds: true },
};

export default config;
