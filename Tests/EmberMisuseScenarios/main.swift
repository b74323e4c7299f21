// Misuse of ops, layers, losses, optimizers and data, each of which must stop the program
// with a message naming what was misused and the shapes or values involved, in debug and
// release builds alike (Swift's `precondition` drops its message under -O; Ember's checks
// do not). `EmberTests.MisuseScenarioTests` runs every scenario in a child process of this
// program and reads its output; CI does so with a release build too:
//
//   EmberMisuseScenarios --list     name<TAB>expected message, one per line
//   EmberMisuseScenarios NAME       runs one scenario (it must not return)
import Ember
import Foundation

let params = [Tensor.zeros([3], requiresGrad: true)]

let scenarios: [(name: String, expected: String, run: () -> Void)] = [
    // Tensor ops
    ("add", "add: shapes [2, 3] and [4] cannot be broadcast together", { _ = Tensor.zeros([2, 3]) + Tensor.zeros([4]) }),
    ("matmul", "matmul: mat1 and mat2 shapes cannot be multiplied ([2, 3] and [4, 5]", {
        _ = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
    }),
    ("reshape", "reshape: shape [5, -1] is invalid for input of size 6", { _ = Tensor.zeros([2, 3]).reshape([5, -1]) }),
    ("dim", "sum: dimension out of range (expected to be in range of [-2, 1], but got 2)", { _ = Tensor.zeros([2, 3]).sum(dim: 2) }),
    ("cat", "cat: sizes of tensors must match except in dimension 0", { _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])]) }),
    ("gatherDtype", "gather: expected index to be an integer tensor (int64), but got float32", {
        _ = Tensor.zeros([2, 3]).gather(1, Tensor.zeros([2, 1]))
    }),
    ("indexBounds", "indexSelect: index 5 is out of bounds for dimension with size 3", { _ = Tensor.zeros([3, 2]).indexSelect(0, Tensor([5])) }),
    ("scatterBounds", "scatterAdd: index -4 is out of bounds for dimension with size 3", {
        _ = Tensor.zeros([2, 3]).scatterAdd(1, Tensor([[-4]]), Tensor.ones([1, 1]))
    }),
    ("mean", "mean: could not infer output dtype. Input dtype must be floating point, but got int64", { _ = Tensor([1, 2]).mean() }),
    ("leafInPlace", "add_: a leaf tensor that requires grad is being used in an in-place operation (shape [2])", {
        Tensor.zeros([2], requiresGrad: true).add_(1)
    }),
    ("view", "view: size [6] is not compatible with input tensor's size [3, 2] and stride [1, 3]", { _ = Tensor.zeros([2, 3]).t().view([6]) }),
    ("requiresGradInt", "requiresGrad: only tensors of floating point dtype can require gradients (got int64)", {
        Tensor([1, 2]).requiresGrad = true
    }),
    ("tril", "tril: input tensor must have at least 2 dimensions (shape [3])", { _ = Tensor.zeros([3]).tril() }),
    ("topk", "topk: selected index k (5) out of range for dimension 0 of size 3 (shape [3])", { _ = Tensor.zeros([3]).topk(5) }),
    ("cross", "cross: inputs dimension -1 must have length 3. Got [2, 4] and [2, 4]", {
        _ = Tensor.cross(Tensor.zeros([2, 4]), Tensor.zeros([2, 4]), dim: -1)
    }),
    ("glu", "glu: Halving dimension must be even, but dimension 1 is size 3 (shape [2, 3])", { _ = Tensor.zeros([2, 3]).glu(dim: 1) }),
    ("hardtanh", "hardtanh: min_val (2.0) cannot be greater than max_val (1.0)", { _ = Tensor.zeros([2]).hardtanh(minVal: 2, maxVal: 1) }),
    ("diagonal", "diagonal: diagonal dimensions cannot be identical 1, 1", { _ = Tensor.zeros([2, 3]).diagonal(dim1: 1, dim2: 1) }),
    ("tensordot", "tensordot: contracted dimensions need to match, but first has size 3 in dim 1 and second has size 4 in dim 0", {
        _ = Tensor.tensordot(Tensor.zeros([2, 3]), Tensor.zeros([4, 2]), dims: 1)
    }),
    ("kthvalue", "kthvalue: selected number k (0) out of range for dimension 1 of size 3", { _ = Tensor.zeros([2, 3]).kthvalue(0) }),
    ("einsum", "einsum(): the number of subscripts in the equation (3) does not match the number of dimensions (2) for operand", {
        _ = Tensor.einsum("ijk->i", [Tensor.zeros([2, 3])])
    }),
    ("cholesky", "linalg.cholesky: The factorization could not be completed because the input is not positive-definite (the leading minor of order 2 is not positive-definite).", {
        _ = Linalg.cholesky(Tensor([[1.0, 2], [2, 1]] as [[Double]]))
    }),
    ("solveSingular", "linalg.solve: The solver failed because the input matrix is singular.", {
        _ = Linalg.solve(Tensor([[1.0, 2], [2, 4]] as [[Double]]), Tensor([1.0, 1] as [Double]))
    }),
    ("invBatch", "linalg.inv: (Batch element 1): The diagonal element 2 is zero, the inversion could not be completed because the input matrix is singular.", {
        _ = Linalg.inv(Tensor([[[1.0, 0], [0, 1]], [[1.0, 1], [1, 1]]] as [[[Double]]]))
    }),
    ("svdRank", "linalg.svd: The input tensor A must have at least 2 dimensions (got shape [3])", { _ = Linalg.svd(Tensor.zeros([3])) }),
    ("solveShapes", "linalg.solve_triangular: Incompatible shapes of A and B for the equation AX = B (3x3 and 2x1)", {
        _ = Linalg.solveTriangular(Tensor.eye(3), Tensor.zeros([2, 1]), upper: true)
    }),
    ("interpolateMode", "interpolate: Got 3D input, but bilinear mode needs 4D input", {
        _ = interpolate(Tensor.zeros([1, 2, 4]), size: [8], mode: .bilinear)
    }),
    ("interpolateAlign", "interpolate: align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear", {
        _ = interpolate(Tensor.zeros([1, 2, 4, 4]), size: [8, 8], mode: .nearest, alignCorners: true)
    }),
    // Layers
    ("Linear", "linear: input shape [2, 5] and weight shape [3, 4] cannot be multiplied", { _ = Linear(4, 3)(Tensor.zeros([2, 5])) }),
    ("LayerNorm", "layerNorm: input shape [2, 7] does not end with the normalized shape [8]", { _ = LayerNorm(8)(Tensor.zeros([2, 7])) }),
    ("BatchNorm2d", "BatchNorm2d: expected input of rank [4] with 3 channels, got shape [2, 4, 5, 5]", {
        _ = BatchNorm2d(3)(Tensor.zeros([2, 4, 5, 5]))
    }),
    ("GroupNorm", "GroupNorm: num_channels (6) must be divisible by num_groups (4)", { _ = GroupNorm(4, 6) }),
    ("Conv2d", "conv2d: input [1, 4, 8, 8] with 4 channels, weight [8, 3, 3, 3] and groups=1 do not fit", {
        _ = Conv2d(3, 8, kernelSize: 3)(Tensor.zeros([1, 4, 8, 8]))
    }),
    ("Conv2dRank", "conv2d: expected a 3-D [C, H, W] or 4-D input [N, C, H, W], got shape [8, 8]", { _ = Conv2d(3, 8, kernelSize: 3)(Tensor.zeros([8, 8])) }),
    ("Conv2dGroups", "Conv2d: in_channels (3) and out_channels (8) must be divisible by groups (2)", { _ = Conv2d(3, 8, kernelSize: 3, groups: 2) }),
    ("MaxPool2d", "maxPool2d: expected a 4-D input [N, C, H, W], got shape [2, 3]", { _ = MaxPool2d(2)(Tensor.zeros([2, 3])) }),
    ("Embedding", "indexSelect: index 12 is out of bounds for dimension with size 10", { _ = Embedding(10, 4)(Tensor([12])) }),
    ("LSTM", "LSTM: expected input [T, N, 6] (batchFirst: false), got shape [5, 2, 7]", {
        _ = LSTM(inputSize: 6, hiddenSize: 8)(Tensor.zeros([5, 2, 7]))
    }),
    ("MultiheadAttentionHeads", "MultiheadAttention: embed_dim (8) must be divisible by num_heads (3)", {
        _ = MultiheadAttention(embedDim: 8, numHeads: 3)
    }),
    ("MultiheadAttentionShapes", "MultiheadAttention: query [5, 2, 6], key [5, 2, 6] and value [5, 2, 6] do not fit embed_dim 8", {
        let x = Tensor.zeros([5, 2, 6])
        _ = MultiheadAttention(embedDim: 8, numHeads: 2).forward(x, x, x)
    }),
    ("Dropout", "Dropout: probability has to be between 0 and 1, but got 1.5", { _ = Dropout(1.5) }),
    // Losses
    ("crossEntropyTarget", "crossEntropy: target 5 is out of bounds for 3 classes", { _ = crossEntropy(Tensor.zeros([2, 3]), Tensor([0, 5])) }),
    ("crossEntropyShape", "crossEntropy: logits [2, 3] and targets [3] do not match", { _ = crossEntropy(Tensor.zeros([2, 3]), Tensor([0, 1, 2])) }),
    ("nllLoss", "nllLoss: expected class indices of dtype int64, got float32", { _ = nllLoss(Tensor.zeros([2, 3]), Tensor.zeros([2])) }),
    ("mseLoss", "mseLoss: input [2, 3] and target [4] cannot be broadcast together", { _ = mseLoss(Tensor.zeros([2, 3]), Tensor.zeros([4])) }),
    ("binaryCrossEntropy", "binaryCrossEntropy: input [2, 3] and target [3, 2] cannot be broadcast together", {
        _ = binaryCrossEntropy(Tensor.full([2, 3], 0.5), Tensor.zeros([3, 2]))
    }),
    // Optimizers
    ("SGD", "SGD: Nesterov momentum requires a momentum and zero dampening", { _ = SGD(params, lr: 0.1, nesterov: true) }),
    ("AdamLearningRate", "Adam: invalid learning rate: -1.0 (lr must be at least 0)", { _ = Adam(params, lr: -1) }),
    ("AdamBetas", "AdamW: invalid beta parameter at index 1: 1.5 (must be in [0, 1))", { _ = AdamW(params, betas: (0.9, 1.5)) }),
    ("paramGroups", "Adam: some parameters appear in more than one parameter group", {
        _ = Adam(groups: [ParamGroup(params: params), ParamGroup(params: params)])
    }),
    // Data
    ("DataLoader", "DataLoader: batchSize (0) and prefetchFactor (2) must be positive", {
        _ = DataLoader(TensorDataset(Tensor.zeros([4, 2])), batchSize: 0)
    }),
    ("randomCrop", "randomCrop: input [1, 4, 4] (padded [1, 4, 4]) is smaller than 8", { _ = Transforms.randomCrop(size: 8)(Tensor.zeros([1, 4, 4])) }),
]

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "--list" {
    for s in scenarios { print("\(s.name)\t\(s.expected)") }
    exit(0)
}
guard let name = arguments.first, let scenario = scenarios.first(where: { $0.name == name }) else {
    FileHandle.standardError.write("usage: EmberMisuseScenarios --list | NAME\n".data(using: .utf8)!)
    exit(2)
}
scenario.run()
print("EMBER-SCENARIO-RETURNED")
exit(0)
