# The PyTorch twins of ember-gpu-check's timings, on the same GPU:
#   python3 Scripts/gpu_check_twin.py epoch mlp|cnn   one epoch (938 steps of 64) on synthetic data: seconds
#   python3 Scripts/gpu_check_twin.py fed             the MLP fed by a DataLoader (2 workers, pinned): seconds
#   python3 Scripts/gpu_check_twin.py overhead        microseconds per small add, and per forward+backward
import sys, time
import torch
import torch.nn as nn


def epoch(model):
    torch.manual_seed(0)
    dev = torch.device('cuda')
    if model == 'mlp':
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)).to(dev)
        x = torch.randn(60000, 784, device=dev)
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)).to(dev)
        x = torch.randn(60000, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (60000,), device=dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    def step(i):
        lo = i * 64
        loss = lossf(net(x[lo:lo + 64]), y[lo:lo + 64])
        opt.zero_grad(); loss.backward(); opt.step()
    for i in range(5): step(i)
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for i in range(938): step(i)
    torch.cuda.synchronize(); print(time.perf_counter() - t0)


def fed():
    torch.manual_seed(0); dev = torch.device('cuda')
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)).to(dev)
    ds = torch.utils.data.TensorDataset(torch.randn(60032, 784), torch.randint(0, 10, (60032,)))
    dl = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, pin_memory=True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3); lossf = nn.CrossEntropyLoss()
    for i, (x, y) in enumerate(dl):
        if i == 5: torch.cuda.synchronize(); t0 = time.perf_counter()
        loss = lossf(net(x.to(dev, non_blocking=True)), y.to(dev, non_blocking=True))
        opt.zero_grad(); loss.backward(); opt.step()
    torch.cuda.synchronize(); print((time.perf_counter() - t0) * 938 / 933)


def overhead():
    d = torch.device('cuda'); a = torch.randn(4, device=d); b = torch.randn(4, device=d); x = torch.randn(4, device=d, requires_grad=True)
    for _ in range(500): a + b
    for _ in range(50):
        y = (x * a + b).sum(); y.backward(); x.grad = None
    torch.cuda.synchronize(); n = 20000; t0 = time.perf_counter()
    for _ in range(n): a + b
    torch.cuda.synchronize(); add = (time.perf_counter() - t0) / n * 1e6; t0 = time.perf_counter()
    for _ in range(n // 10):
        y = (x * a + b).sum(); y.backward(); x.grad = None
    torch.cuda.synchronize(); print(add, (time.perf_counter() - t0) / (n // 10) * 1e6)


if __name__ == "__main__":
    {"epoch": lambda: epoch(sys.argv[2]), "fed": fed, "overhead": overhead}[sys.argv[1]]()
