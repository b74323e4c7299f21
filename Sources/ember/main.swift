import Ember

let x = Tensor([[1, 2], [3, 4]] as [[Float]], requiresGrad: true)
let w = Tensor([0.5, -1.0, 2.0, 0.25], shape: [2, 2], requiresGrad: true)
let y = (x.matmul(w).relu() * x).sum()
try y.backward()
print("y =", y)
print("dy/dx =", x.grad!)
print("dy/dw =", w.grad!)
let a = Tensor.arange(0, 12).reshape([3, 4])
print(a[1..<3, 0], a.t(), a.sum(dim: 0))
print(Tensor.randn([2, 3]).softmax(dim: 1))
