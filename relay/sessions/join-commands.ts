// The one-liners an engineer hands to the customer. The public URL was checked
// at startup to contain no character a shell or Python would interpret, and the
// code and token are base32 / base64url, so nothing here needs quoting beyond
// what is written.
export interface JoinCommands {
  curl: string;
  wget: string;
  python: string;
  /** For operators and tests: the token goes in the environment, never in argv. */
  env: string;
}

export function joinCommands(publicUrl: string, code: string, joinToken: string): JoinCommands {
  const script = `${publicUrl}/j/${code}`;
  return {
    curl: `curl -fsSL ${script} | sh`,
    wget: `wget -qO- ${script} | sh`,
    python: `python3 -c "import urllib.request as u,subprocess as s;s.run(['sh'],input=u.urlopen('${script}').read(),check=True)"`,
    env: `PERISCOPE_TOKEN=${joinToken} periscope connect ${publicUrl}`,
  };
}
