// The one-liners an engineer hands to the customer. The public URL was checked
// at startup to contain no character a shell or Python would interpret, and the
// code and token are base32 / base64url, so nothing here needs quoting beyond
// what is written.
import type { JoinCommands } from '../../shared/http-views.ts';

export function joinCommands(publicUrl: string, code: string, joinToken: string): JoinCommands {
  const script = `${publicUrl}/j/${code}`;
  return {
    curl: `curl -fsSL ${script} | sh`,
    wget: `wget -qO- ${script} | sh`,
    // Python fetches the script, then becomes `sh` reading it from a pipe: no
    // Python process stays behind holding the URL in its argv, killing the
    // shell before its cleanup trap runs, or printing tracebacks.
    python: `python3 -c "import os,urllib.request as u;d=u.urlopen('${script}').read();r,w=os.pipe();os.write(w,d);os.close(w);os.dup2(r,0);os.execvp('sh',['sh'])"`,
    env: `PERISCOPE_TOKEN=${joinToken} periscope connect ${publicUrl}`,
  };
}
