namespace Rlft.Actors.Protocol;

/// <summary>
/// Marker for every message that may cross the wire. The HOCON binding
/// (hocon/akka.conf, <c>serialization-bindings</c>) maps it to <see cref="Serialization.RlftSerializer"/>;
/// with unregistered types refused, a message without this marker cannot leave its node.
/// </summary>
internal interface IRlftMessage;
