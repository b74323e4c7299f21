# The PyTorch twin of `ember bench`: a persistent process that times the PyTorch version of
# each case on request (same machine, same threads). Started by `ember bench` as
#   python3 Scripts/bench_twin.py THREADS
# it prints "ready", then answers each line "NAME\tITERATIONS\tREPEATS" with the seconds
# per iteration of each repeat ("nan" for a case it does not know), and "rss\t" with the
# DataLoader's resident memory report. It exits with status 1 when torch cannot be imported.
import sys, time
try:
    import torch
except Exception:
    sys.exit(1)
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
def cases(name):
    if name.startswith("add_4 "):
        a, b = torch.randn(4), torch.randn(4)
        return lambda: a + b
    if name.startswith("fwd+bwd"):
        a, b, c = (torch.randn(4, requires_grad=True) for _ in range(3))
        return lambda: (a * b + c).sum().backward()
    if name.startswith("add_") or name.startswith("relu_"):
        n = int(name.split("_")[1][:-1]) << 20
        x, y = torch.randn(n), torch.randn(n)
        return (lambda: x + y) if name.startswith("add_") else (lambda: x.relu())
    if name.startswith("softmax"):
        x = torch.randn(64, 1000)
        return lambda: x.softmax(1)
    if name.startswith("sgemm_"):
        n = int(name.split("_")[1])
        x, y = torch.randn(n, n), torch.randn(n, n)
        if name.endswith("_1t"):
            def one():
                t = torch.get_num_threads()
                torch.set_num_threads(1)
                x @ y
                torch.set_num_threads(t)
            return one
        return lambda: x @ y
    if name.startswith("conv"):
        import torch.nn.functional as F
        c, o, hw = (1, 32, 28) if name.startswith("conv1") else (32, 64, 14)
        x, w, b = torch.randn(64, c, hw, hw), torch.randn(o, c, 3, 3), torch.randn(o)
        if name.endswith("_fwd"):
            return lambda: F.conv2d(x, w, b, padding=1)
        x.requires_grad_(); w.requires_grad_(); b.requires_grad_()
        return lambda: F.conv2d(x, w, b, padding=1).sum().backward()
    if name.startswith("adam_step"):
        p = torch.randn(1 << 20, requires_grad=True)
        p.grad = torch.randn(1 << 20)
        opt = torch.optim.Adam([p], lr=1e-3)
        return lambda: opt.step()
    if name.startswith("cross_entropy"):
        import torch.nn.functional as F
        logits, target = torch.randn(64, 1000), torch.randint(0, 1000, (64,))
        return lambda: F.cross_entropy(logits, target)
    if name == "sort_1M":
        x = torch.randn(1 << 20)
        return lambda: x.sort()
    if name == "sort_rows_1024x1024":
        x = torch.randn(1024, 1024)
        return lambda: x.sort(dim=1)
    if name == "topk_64x50000_k10":
        x = torch.randn(64, 50000)
        return lambda: x.topk(10, dim=1)
    if name == "cumsum_1M":
        x = torch.randn(1 << 20)
        return lambda: x.cumsum(0)
    if name == "cumsum_rows_1024x1024":
        x = torch.randn(1024, 1024)
        return lambda: x.cumsum(1)
    if name == "einsum_attention_8x8x128x64":
        q, k = torch.randn(8, 8, 128, 64), torch.randn(8, 8, 128, 64)
        return lambda: torch.einsum("bhqd,bhkd->bhqk", q, k)
    if name == "cdist_1024x1024x64":
        a, b = torch.randn(1024, 64), torch.randn(1024, 64)
        return lambda: torch.cdist(a, b)
    if name == "interpolate_bilinear_8x32x64x64_to_128":
        import torch.nn.functional as F
        x = torch.randn(8, 32, 64, 64)
        return lambda: F.interpolate(x, size=(128, 128), mode="bilinear", align_corners=False)
    if name == "cholesky_512":
        x = torch.randn(512, 512)
        a = x @ x.mT + torch.eye(512) * 512
        return lambda: torch.linalg.cholesky(a)
    if name == "solve_512x512_rhs64":
        a, b = torch.randn(512, 512) + torch.eye(512) * 16, torch.randn(512, 64)
        return lambda: torch.linalg.solve(a, b)
    if name == "svd_256":
        a = torch.randn(256, 256)
        return lambda: torch.linalg.svd(a, full_matrices=False)
    if name.startswith("train_"):
        return train_epoch(name.split("_")[1])
    if name.startswith("loader_epoch_w"):
        return loader_epoch(int(name[len("loader_epoch_w"):]))
    return None
def loader_epoch(workers):
    import torch.nn.functional as F
    from torch.utils.data import Dataset, DataLoader
    x, y = training_data(raw=True)
    class Aug(Dataset):
        def __len__(self): return len(y)
        def __getitem__(self, i):
            img = (x[i].float() / 255 - 0.2860) / 0.3530
            img = F.pad(img.unsqueeze(0), (4, 4, 4, 4))
            t, l = torch.randint(0, 9, (2,)).tolist()
            img = img[:, t:t + 28, l:l + 28]
            if torch.rand(()) < 0.5:
                img = img.flip(-1)
            return img, y[i]
    loader = DataLoader(Aug(), batch_size=64, shuffle=True, num_workers=workers)
    def run():
        for _ in loader:
            pass
    return run
def training_data(raw=False):
    import gzip, os
    root = "/usr/share/datasets/fashion-mnist"
    try:
        with gzip.open(os.path.join(root, "train-images-idx3-ubyte.gz")) as f:
            x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).reshape(60000, 28, 28)
        with gzip.open(os.path.join(root, "train-labels-idx1-ubyte.gz")) as f:
            y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8).long()
        return (x if raw else (x.float() / 255 - 0.2860) / 0.3530), y
    except OSError:
        if raw:
            return torch.randint(0, 256, (60000, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (60000,))
        return torch.randn(60000, 28, 28), torch.randint(0, 10, (60000,))
def train_epoch(model):
    import torch.nn as nn, torch.nn.functional as F
    x, y = training_data()
    def run():
        torch.manual_seed(0)
        if model == "mlp":
            net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
        else:
            net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for i in range(0, 60000, 64):
            xb = x[i:i + 64]
            if model == "cnn":
                xb = xb.unsqueeze(1)
            loss = F.cross_entropy(net(xb), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run
def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1]) / 1e3
    except OSError:
        pass
    return 0.0
def children_rss():
    import os
    me, total = os.getpid(), 0.0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        total += rss_of(p)
            except (OSError, ValueError, IndexError):
                pass
    return total
def rss_report():
    import os
    import torch.nn.functional as F
    from torch.utils.data import Dataset, DataLoader
    x, y = training_data(raw=True)
    class Aug(Dataset):
        def __len__(self): return len(y)
        def __getitem__(self, i):
            img = F.pad(((x[i].float() / 255 - 0.2860) / 0.3530).unsqueeze(0), (4, 4, 4, 4))
            t, l = torch.randint(0, 9, (2,)).tolist()
            img = img[:, t:t + 28, l:l + 28]
            return (img.flip(-1) if torch.rand(()) < 0.5 else img), y[i]
    dl = DataLoader(Aug(), batch_size=64, shuffle=True, num_workers=2, persistent_workers=True)
    out = []
    for epoch in range(1, 11):
        for _ in dl:
            pass
        if epoch in (1, 10):
            out += [rss_of(os.getpid()), children_rss()]
    return " ".join(f"{v:.1f}" for v in out)
print("ready", flush=True)
last_name, f = None, None
for line in sys.stdin:
    if line.startswith("rss\t"):
        print(rss_report(), flush=True)
        continue
    name, iters, reps = line.rstrip("\n").split("\t")
    iters, reps = int(iters), int(reps)
    if name != last_name:
        # The same case asked again (another round) reuses its inputs.
        last_name, f = name, cases(name)
    if f is None:
        print("nan", flush=True); continue
    if reps > 1:
        for _ in range(max(1, iters // 10)): f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters): f()
        ts.append((time.perf_counter() - t0) / iters)
    print(" ".join(repr(t) for t in ts), flush=True)
