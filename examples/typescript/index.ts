// A TypeScript program composing istio-ca's MeshCA for two clusters: "east" reached through its
// kubeconfig, "west" through a Kubernetes provider of this stack's own.
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as istioca from "@pulumi/istio-ca";

const config = new pulumi.Config();
const westKubeconfig = config.requireSecret("westKubeconfig");

// enableSecretMutable: `cacerts` is updated in place, never deleted and re-created under istiod.
const west = new k8s.Provider("west", { kubeconfig: westKubeconfig, enableSecretMutable: true });

const mesh = new istioca.MeshCA("mesh", {
    // The keys of the README's config table, without the `istio-ca:` prefix.
    mesh: {
        clusters: [
            { name: "east", kubeconfig: config.get("eastKubeconfig") ?? "~/.kube/east.yaml" },
            { name: "west" },
        ],
        root: { keyAlgorithm: "ECDSA", days: 3650 },
        intermediate: { keyAlgorithm: "ECDSA" },
    },
    hostClusters: {
        west: { provider: west, kubeconfig: westKubeconfig },
    },
});

export const rootCertPem = mesh.rootCertPem;
export const rootNotAfter = mesh.rootNotAfter;
export const trustedRootsPem = mesh.trustedRootsPem;
export const eastNotAfter = mesh.clusters.apply((clusters) => clusters["east"]["notAfter"] as string);
export const westRootPhase = mesh.clusters.apply((clusters) => clusters["west"]["rootPhase"] as string);
