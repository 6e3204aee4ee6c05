/** What media is linked to: the path segment of its endpoint. */
export type ObjectType = 'entities' | 'events' | 'alerts' | 'cases';
/** The objects other than entities; a file's `object` is absent for an entity. */
export type LinkedObject = Exclude<ObjectType, 'entities'>;
