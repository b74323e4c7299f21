@_exported import EmberCore
@_exported import EmberData
@_exported import EmberNN
@_exported import EmberOptim
@_exported import EmberDistributed
